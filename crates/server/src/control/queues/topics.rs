//! Topics: create, list, keys, publish (fan-out to subscribed queues), subscriptions.

use crate::auth::{InProject, Producer};
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Shared, created_status, json, message, name};
use crate::error::ApiError;
use updraft_api::{Code, CreateTopic, Published, SendMessage, Subscribe, TopicCreated, TopicList};

pub(crate) async fn list_topics(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
) -> Result<Json<TopicList>, ApiError> {
    let topics = state.log.topics(&project).await?;
    Ok(Json(TopicList { topics }))
}

pub(crate) async fn create_topic(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    body: Result<Json<CreateTopic>, JsonRejection>,
) -> Result<(StatusCode, Json<TopicCreated>), ApiError> {
    let req = json(body)?;
    name("topic", &req.name)?;
    let (topic, key) = state.log.create_topic(&project, &req.name).await?;
    let (created, status) = created_status(key.is_some());
    Ok((
        status,
        Json(TopicCreated {
            topic,
            created,
            access_key: key,
        }),
    ))
}

pub(crate) async fn topic_info(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let info = state.log.topic(&project, &t).await?;
    Ok(Json(info).into_response())
}

pub(crate) async fn delete_topic(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(t): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.log.delete_topic(&project, &t).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn rotate_topic_key(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path(t): Path<String>,
) -> Result<Json<TopicCreated>, ApiError> {
    let key = state.log.rotate_topic_key(&project, &t).await?;
    let topic = state.log.topic(&project, &t).await?;
    Ok(Json(TopicCreated {
        topic,
        created: false,
        access_key: Some(key),
    }))
}

pub(crate) async fn publish(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Extension(Producer(producer)): Extension<Producer>,
    Path(t): Path<String>,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let mut m = message(
        json(body)?,
        format!("/topics/{t}"),
        "dev.updraft.topic.published",
        None,
    )?;
    m.attributes
        .insert(super::PRODUCER_ATTRIBUTE.to_owned(), producer);
    let (id, queues) = state.log.publish(&project, &t, m).await?;
    for q in &queues {
        state.wakeups.wake(&project, q);
    }
    Ok((
        StatusCode::CREATED,
        Json(Published {
            id,
            delivered_to: queues.len() as u64,
        }),
    ))
}

pub(crate) async fn subscribe(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path((t, q)): Path<(String, String)>,
    body: Result<Json<Subscribe>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = json(body)?;
    let topic = t.clone();
    state
        .log
        .subscribe_queue(&project, &topic, &q, &req.filter)
        .await?;
    let info = state.log.topic(&project, &topic).await?;
    Ok(Json(info).into_response())
}

pub(crate) async fn unsubscribe(
    State(state): Shared,
    Extension(InProject(project)): Extension<InProject>,
    Path((t, q)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (topic, queue) = (t.clone(), q.clone());
    let removed = state
        .log
        .unsubscribe_queue(&project, &topic, &queue)
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            Code::QueueNotFound,
            format!("queue `{q}` is not subscribed to topic `{t}`"),
        ))
    }
}
