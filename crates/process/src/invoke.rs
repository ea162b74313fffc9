//! One invocation of a process version: its input shaped as Lambda's event, an environment
//! taken (or started: a cold start), the job handed to the runtime client, and its outcome
//! turned into a response; then `END` and `REPORT`, the invocation's report and the
//! environment's return to the pool, once the answer is complete (at once for a buffered
//! answer; when its body ends for a streamed one, see `stream`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use updraft_api::Trigger;
use updraft_dispatch::{Body, Input, Invocation, InvocationSink, InvokeError, Stream};

use crate::api::{Job, Outcome};
use crate::env::Ran;
use crate::finish::Finish;
use crate::identity;
use crate::shapes::{self, Shape};
use crate::version::{Inner, trace_id};

impl Inner {
    /// Runs one invocation (see the module's doc).
    pub(crate) async fn run(
        self: Arc<Self>,
        invocation: Invocation,
        sink: Arc<dyn InvocationSink>,
    ) -> Result<http::Response<Body>, InvokeError> {
        self.number.store(invocation.version, Ordering::Relaxed);
        let spec = self
            .spec()
            .await
            .map_err(|e| InvokeError::Load(e.message))?;
        let request_id = invocation.request_id.clone();
        let (mut client_context, mut cognito_identity) = (None, None);
        let (payload, shape) = match invocation.input {
            Input::Http(req) if invocation.trigger == Trigger::Invoke => {
                client_context =
                    identity::client_context(req.headers()).map_err(InvokeError::BadInput)?;
                let body = http_body_util::BodyExt::collect(req.into_body())
                    .await
                    .map_err(|e| InvokeError::BadInput(e.to_string()))?
                    .to_bytes();
                (body.to_vec(), Shape::Raw)
            }
            Input::Http(req) => {
                cognito_identity = identity::cognito_identity(req.headers(), self.project());
                let event = shapes::http_event(req, &request_id)
                    .await
                    .map_err(|e| InvokeError::BadInput(e.to_string()))?;
                (event, Shape::Http)
            }
            Input::Events(events) => shapes::events_payload(invocation.trigger, &events),
        };
        let started = Instant::now();
        let (mut env, init) = self.take(&spec, &sink).await?;
        env.attach(sink.clone());
        let version = invocation.version.to_string();
        sink.line(
            Stream::Platform,
            &format!("START RequestId: {request_id} Version: {version}"),
        );
        let timeout = self.settings.timeout;
        let deadline_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(timeout)
            .as_millis();
        let job = Job {
            request_id: request_id.clone(),
            deadline_ms: u64::try_from(deadline_ms).unwrap_or(u64::MAX),
            function_arn: self.arn(),
            trace_id: trace_id(&invocation.traceparent),
            client_context,
            cognito_identity,
            payload: Bytes::from(payload),
        };
        let run_started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let ran = env.run(job, deadline, self.settings.memory_bytes).await;
        let finish = Finish {
            inner: self.clone(),
            sink,
            request_id,
            init,
            started,
            run_started,
        };
        let result = match ran {
            Ran::Done(Outcome::Stream(streamed)) => {
                return crate::stream::respond(finish, env, streamed, &shape, deadline).await;
            }
            Ran::Done(Outcome::Response(bytes)) => Ok(shapes::response(&shape, bytes)),
            Ran::Done(Outcome::Error {
                error_type,
                message,
            }) => Err(InvokeError::Handler {
                error_type,
                message,
            }),
            Ran::Done(Outcome::TooLarge(limit)) => {
                // Its client was told 413 mid-answer; what it does next is its own (awslambdaric
                // gives up): the process is replaced rather than trusted with another.
                env.kill();
                Err(InvokeError::Handler {
                    error_type: "Function.ResponseSizeTooLarge".into(),
                    message: format!(
                        "the response is larger than the {limit} bytes a response may be"
                    ),
                })
            }
            Ran::Timeout => Err(finish.timed_out()),
            Ran::OutOfMemory(rss) => Err(finish.out_of_memory(rss)),
            Ran::Exited(status) => Err(finish.exited(&status)),
        };
        match &result {
            // Answered: the caller has it now; the environment is closed (its last lines, END,
            // REPORT) and given back once its runtime asks for the next invocation.
            Ok(_) | Err(InvokeError::Handler { .. }) if env.alive() => {
                let error = result.as_ref().err().cloned();
                self.finishing.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    let mut env = env;
                    env.flush().await;
                    let inner = finish.inner.clone();
                    finish.done(env, error.as_ref());
                    inner.finishing.fetch_sub(1, Ordering::AcqRel);
                    inner.returned.notify_waiters();
                });
            }
            _ => finish.done(env, result.as_ref().err()),
        }
        result
    }
}
