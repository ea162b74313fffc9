//! Test handler for Updraft's process runtime (see ../README.md). Every event is deserialised
//! with the `aws_lambda_events` types: a shape Updraft gets wrong fails here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, FunctionResponse, LambdaEvent, MetadataPrelude, service_fn};
use serde_json::{Value, json};

static COUNT: AtomicU64 = AtomicU64::new(0);

/// `/r/stream`: three chunks, 1 s apart, in Lambda's streaming mode; `/r/stream-error` exits
/// the process after the first.
fn stream(fail: bool) -> FunctionResponse<Value, Body> {
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for (i, chunk) in ["one\n", "two\n", "three\n"].into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if fail && i == 1 {
                std::process::exit(4);
            }
            if tx.send_data(chunk.into()).await.is_err() {
                return;
            }
        }
    });
    let mut prelude = MetadataPrelude::default();
    prelude.status_code = 201.try_into().unwrap_or_default();
    prelude.headers.insert("content-type", "text/plain".parse().unwrap());
    prelude.headers.insert("x-streamed", "yes".parse().unwrap());
    FunctionResponse::StreamingResponse(Response {
        metadata_prelude: prelude,
        stream: rx,
    })
}

async fn handler(event: LambdaEvent<Value>) -> Result<FunctionResponse<Value, Body>, Error> {
    let buffered = |v: Value| Ok(FunctionResponse::BufferedResponse(v));
    let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let (payload, ctx) = (event.payload, event.context);
    if payload["version"] == "2.0" {
        let req: ApiGatewayV2httpRequest = serde_json::from_value(payload)?;
        let op = req.path_parameters.get("op").cloned().unwrap_or_default();
        match op.as_str() {
            "hello" => {
                return buffered(json!({
                    "statusCode": 200,
                    "headers": {"content-type": "text/plain"},
                    "body": "Hello, world!",
                }));
            }
            "error" => return Err("asked to fail".into()),
            "sleep" => tokio::time::sleep(Duration::from_secs(60)).await,
            "sleep1" => tokio::time::sleep(Duration::from_secs(1)).await,
            "alloc" => {
                let blob = vec![1u8; 512 << 20];
                std::hint::black_box(&blob);
            }
            "exit" => std::process::exit(3),
            "stream" => return Ok(stream(false)),
            "stream-error" => return Ok(stream(true)),
            _ => {}
        }
        let claims = req
            .request_context
            .authorizer
            .and_then(|a| a.jwt)
            .map(|j| json!(j.claims));
        let info = json!({
            "request_id": ctx.request_id,
            "deadline_ms": ctx.deadline,
            "arn": ctx.invoked_function_arn,
            "function": ctx.env_config.function_name,
            "memory": ctx.env_config.memory,
            "route_key": req.route_key,
            "param": op,
            "count": count,
            "pid": std::process::id(),
            "claims": claims,
            "env_home": std::env::var("HOME").ok(),
            "identity": ctx.identity.as_ref().map(|i| [&i.identity_id, &i.identity_pool_id]),
        });
        return buffered(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": info.to_string(),
        }));
    }
    if payload["Records"][0]["eventSource"] == "aws:sqs" {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        let mut failures = Vec::new();
        for r in batch.records {
            let body = r.body.unwrap_or_default();
            println!("sqs {body}");
            if body == "fail" {
                failures.push(json!({"itemIdentifier": r.message_id}));
            }
        }
        return buffered(json!({"batchItemFailures": failures}));
    }
    if payload["detail-type"] == "Scheduled Event" {
        let e: EventBridgeEvent = serde_json::from_value(payload)?;
        println!("scheduled {}", e.id.unwrap_or_default());
        return buffered(Value::Null);
    }
    let custom = ctx.client_context.as_ref().map(|c| &c.custom);
    buffered(json!({"echo": payload, "request_id": ctx.request_id, "count": count, "client_context": custom}))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
