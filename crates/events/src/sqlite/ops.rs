//! The event log's operations on the SQLite connection, one transaction each (see
//! [`crate::EventLog`] for what each does).

use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use updraft_api::{AsyncInvocation, AttemptError, Filter, QueueInfo, TopicInfo};

use super::db::*;
use crate::{
    AsyncResult, EventError, Fate, Feed, FunctionTriggers, Holder, MAX_ASYNC_RESULT, Message,
    NewMessage, QueueSpec, QueueStats, Settle, async_status, internal_queue, new_id, now_ms,
};

impl Db {
    pub(super) fn create_queue(
        &self,
        project: &str,
        spec: &QueueSpec,
    ) -> Result<(QueueInfo, Option<String>), EventError> {
        self.tx(|tx| {
            let key = ensure_queue(tx, project, spec, spec.name.contains('~'))?;
            Ok((queue_info(tx, project, &spec.name)?, key))
        })
    }

    pub(super) fn delete_queue(&self, project: &str, queue: &str) -> Result<(), EventError> {
        self.tx(|tx| {
            let consumers: Vec<String> = tx
                .prepare_cached(
                    "SELECT function FROM consumers WHERE project = ?1 AND queue = ?2",
                )?
                .query_map(params![project, queue], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if !consumers.is_empty() {
                return Err(EventError::Conflict(format!(
                    "queue `{queue}` is consumed by function `{}`: remove its [[functions.queue]] first",
                    consumers.join("`, `")
                )));
            }
            let n = tx.execute(
                "DELETE FROM queues WHERE project = ?1 AND name = ?2",
                params![project, queue],
            )?;
            if n == 0 {
                return Err(EventError::QueueNotFound(queue.to_owned()));
            }
            tx.execute(
                "DELETE FROM messages WHERE project = ?1 AND queue = ?2",
                params![project, queue],
            )?;
            tx.execute(
                "DELETE FROM queue_keys WHERE project = ?1 AND queue = ?2",
                params![project, queue],
            )?;
            tx.execute(
                "DELETE FROM subscriptions WHERE project = ?1 AND queue = ?2",
                params![project, queue],
            )?;
            Ok(())
        })
    }

    pub(super) fn queue(&self, project: &str, queue: &str) -> Result<QueueInfo, EventError> {
        queue_info(&self.lock(), project, queue)
    }

    pub(super) fn queues(
        &self,
        project: &str,
        internal: bool,
    ) -> Result<Vec<QueueInfo>, EventError> {
        let conn = self.lock();
        let names: Vec<String> = conn
            .prepare_cached(
                "SELECT name FROM queues WHERE project = ?1 AND (internal = 0 OR ?2) ORDER BY name",
            )?
            .query_map(params![project, internal], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        names
            .iter()
            .map(|n| queue_info(&conn, project, n))
            .collect()
    }

    pub(super) fn send(
        &self,
        project: &str,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>, EventError> {
        let n = messages.len() as u64;
        self.tx(|tx| {
            self.check_depth(tx, project, queue, n)?;
            send_to(tx, project, queue, messages)
        })
    }

    pub(super) fn receive(
        &self,
        project: &str,
        queue: &str,
        max: u32,
        visibility: Option<Duration>,
        holder: Holder,
    ) -> Result<Vec<Message>, EventError> {
        self.light_tx(|tx| {
            let (default_ms, _) = queue_limits(tx, project, queue)?;
            let lease_ms = visibility.map_or(default_ms, ms);
            let now = now_ms();
            let mut pick = tx.prepare_cached(
                "SELECT seq FROM messages WHERE project = ?1 AND queue = ?2 AND visible_ms <= ?3
                 ORDER BY visible_ms, seq LIMIT ?4",
            )?;
            let seqs: Vec<i64> = pick
                .query_map(params![project, queue, now, max], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let holder = match holder {
                Holder::Deliverer => "deliverer",
                Holder::Client => "client",
            };
            let mut lease = tx.prepare_cached(
                "UPDATE messages SET visible_ms = ?2, receipt = ?3, holder = ?4, attempts = attempts + 1
                 WHERE seq = ?1
                 RETURNING id, source, type, content_type, attributes, data, time_ms, attempts, errors",
            )?;
            let mut out = Vec::with_capacity(seqs.len());
            for seq in seqs {
                let receipt = format!("{seq}-{}", hex::encode(rand::random::<[u8; 8]>()));
                let m = lease.query_row(
                    params![seq, now + lease_ms, receipt, holder],
                    |r| {
                        let attributes: String = r.get(4)?;
                        let errors: String = r.get(8)?;
                        Ok(Message {
                            id: r.get(0)?,
                            receipt: receipt.clone(),
                            queue: queue.to_owned(),
                            source: r.get(1)?,
                            kind: r.get(2)?,
                            content_type: r.get(3)?,
                            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                            data: r.get(5)?,
                            time_ms: r.get(6)?,
                            attempts: r.get(7)?,
                            errors: serde_json::from_str(&errors).unwrap_or_default(),
                        })
                    },
                )?;
                out.push(m);
            }
            Ok(out)
        })
    }

    pub(super) fn next_visible(
        &self,
        project: &str,
        queue: &str,
    ) -> Result<Option<i64>, EventError> {
        Ok(self.lock().query_row(
            "SELECT min(visible_ms) FROM messages WHERE project = ?1 AND queue = ?2",
            params![project, queue],
            |r| r.get(0),
        )?)
    }

    pub(super) fn ack(
        &self,
        project: &str,
        queue: &str,
        receipts: &[String],
    ) -> Result<u64, EventError> {
        self.light_tx(|tx| {
            let mut del = tx.prepare_cached(
                "DELETE FROM messages WHERE seq = ?1 AND receipt = ?2 AND project = ?3 \
                 AND queue = ?4",
            )?;
            let mut n = 0;
            for r in receipts {
                if let Some(seq) = receipt_seq(r) {
                    n += del.execute(params![seq, r, project, queue])? as u64;
                }
            }
            Ok(n)
        })
    }

    pub(super) fn settle(
        &self,
        project: &str,
        receipts: &[String],
        how: &Settle,
        result: Option<&AsyncResult>,
    ) -> Result<Fate, EventError> {
        self.light_tx(|tx| {
            let now = now_ms();
            let mut first = None;
            for receipt in receipts {
                let Some(seq) = receipt_seq(receipt) else {
                    continue;
                };
                let row: Option<(String, String, u32, String)> = tx
                    .prepare_cached(
                        "SELECT id, queue, attempts, errors FROM messages WHERE seq = ?1 AND receipt = ?2 AND project = ?3",
                    )?
                    .query_row(params![seq, receipt, project], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()?;
                let Some((id, _queue, attempts, errors)) = row else {
                    first.get_or_insert(Fate::Gone);
                    continue;
                };
                let fate = match how {
                    Settle::Ack => {
                        tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq])?;
                        Fate::Acked
                    }
                    Settle::Release { delay } => {
                        let at = now + ms(*delay);
                        tx.execute(
                            "UPDATE messages SET visible_ms = ?2, receipt = NULL, holder = NULL,
                             attempts = max(attempts - 1, 0) WHERE seq = ?1",
                            params![seq, at],
                        )?;
                        Fate::Retrying(at)
                    }
                    Settle::Fail {
                        error,
                        max_attempts,
                        delay,
                        dead_letter,
                    } => {
                        let mut history: Vec<AttemptError> =
                            serde_json::from_str(&errors).unwrap_or_default();
                        history.push(AttemptError {
                            attempt: attempts,
                            ..error.clone()
                        });
                        let history = serde_json::to_string(&history).unwrap_or_default();
                        if attempts >= *max_attempts {
                            ensure_queue(tx, project, &QueueSpec::new(dead_letter.clone()), false)?;
                            tx.execute(
                                "UPDATE messages SET queue = ?2, visible_ms = ?3, receipt = NULL, holder = NULL,
                                 attempts = 0, errors = ?4 WHERE seq = ?1",
                                params![seq, dead_letter, now, history],
                            )?;
                            Fate::DeadLettered
                        } else {
                            let at = now + ms(*delay);
                            tx.execute(
                                "UPDATE messages SET visible_ms = ?2, receipt = NULL, holder = NULL, errors = ?3
                                 WHERE seq = ?1",
                                params![seq, at, history],
                            )?;
                            Fate::Retrying(at)
                        }
                    }
                };
                first.get_or_insert(fate);
                if let (Some(result), Some(status)) = (result, async_status(how, fate)) {
                    let body = result.body.as_deref().map(|b| &b[..b.len().min(MAX_ASYNC_RESULT)]);
                    tx.prepare_cached(
                        "UPDATE async_invocations SET status = ?3, updated_ms = ?4, attempts = ?5,
                         request_id = ?6, resp_status = ?7, resp_body = ?8, error = ?9
                         WHERE project = ?1 AND id = ?2",
                    )?
                    .execute(params![
                        project,
                        id,
                        status.as_str(),
                        now,
                        attempts,
                        result.request_id,
                        result.status,
                        body,
                        result.error
                    ])?;
                }
            }
            Ok(first.unwrap_or(Fate::Gone))
        })
    }

    pub(super) fn release_all(&self, holder: Holder) -> Result<u64, EventError> {
        let holder = match holder {
            Holder::Deliverer => "deliverer",
            Holder::Client => "client",
        };
        let n = self.lock().execute(
            "UPDATE messages SET visible_ms = min(visible_ms, ?2), receipt = NULL, holder = NULL
             WHERE holder = ?1",
            params![holder, now_ms()],
        )?;
        Ok(n as u64)
    }

    pub(super) fn purge(&self, project: &str, queue: &str) -> Result<u64, EventError> {
        self.tx(|tx| {
            queue_limits(tx, project, queue)?;
            let n = tx.execute(
                "DELETE FROM messages WHERE project = ?1 AND queue = ?2",
                params![project, queue],
            )?;
            Ok(n as u64)
        })
    }

    pub(super) fn stats(&self) -> Result<Vec<QueueStats>, EventError> {
        let conn = self.lock();
        let now = now_ms();
        let mut stmt = conn.prepare_cached(
            "SELECT q.project, q.name, count(m.seq),
                    coalesce(sum(m.receipt IS NOT NULL AND m.visible_ms > ?1), 0), min(m.time_ms)
             FROM queues q LEFT JOIN messages m ON m.project = q.project AND m.queue = q.name
             GROUP BY q.project, q.name ORDER BY q.project, q.name",
        )?;
        let rows = stmt
            .query_map(params![now], |r| {
                let oldest: Option<i64> = r.get(4)?;
                Ok(QueueStats {
                    project: r.get(0)?,
                    queue: r.get(1)?,
                    depth: u(r.get(2)?),
                    in_flight: u(r.get(3)?),
                    oldest_age_ms: oldest.map_or(0, |t| u(now - t)),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub(super) fn create_topic(
        &self,
        project: &str,
        topic: &str,
    ) -> Result<(TopicInfo, Option<String>), EventError> {
        self.tx(|tx| {
            let key = ensure_topic(tx, project, topic)?;
            Ok((topic_info(tx, project, topic)?, key))
        })
    }

    pub(super) fn rotate_topic_key(
        &self,
        project: &str,
        topic: &str,
    ) -> Result<String, EventError> {
        rotate_key(&self.lock(), "topics", project, topic)?
            .ok_or_else(|| EventError::TopicNotFound(topic.to_owned()))
    }

    pub(super) fn check_topic_key(
        &self,
        project: &str,
        topic: &str,
        key: &str,
    ) -> Result<bool, EventError> {
        check_key(&self.lock(), "topics", project, topic, key)?
            .ok_or_else(|| EventError::TopicNotFound(topic.to_owned()))
    }

    pub(super) fn delete_topic(&self, project: &str, topic: &str) -> Result<(), EventError> {
        self.tx(|tx| {
            let functions: Vec<String> = tx
                .prepare_cached(
                    "SELECT target FROM subscriptions WHERE project = ?1 AND topic = ?2 AND kind = 'function'",
                )?
                .query_map(params![project, topic], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if !functions.is_empty() {
                return Err(EventError::Conflict(format!(
                    "topic `{topic}` has subscribed functions (`{}`): remove their [[functions.topic]] first",
                    functions.join("`, `")
                )));
            }
            let n = tx.execute(
                "DELETE FROM topics WHERE project = ?1 AND name = ?2",
                params![project, topic],
            )?;
            if n == 0 {
                return Err(EventError::TopicNotFound(topic.to_owned()));
            }
            tx.execute(
                "DELETE FROM subscriptions WHERE project = ?1 AND topic = ?2",
                params![project, topic],
            )?;
            Ok(())
        })
    }

    pub(super) fn topic(&self, project: &str, topic: &str) -> Result<TopicInfo, EventError> {
        topic_info(&self.lock(), project, topic)
    }

    pub(super) fn topics(&self, project: &str) -> Result<Vec<TopicInfo>, EventError> {
        let conn = self.lock();
        let names: Vec<String> = conn
            .prepare_cached("SELECT name FROM topics WHERE project = ?1 ORDER BY name")?
            .query_map(params![project], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        names
            .iter()
            .map(|n| topic_info(&conn, project, n))
            .collect()
    }

    pub(super) fn subscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
        filter: &Filter,
    ) -> Result<(), EventError> {
        self.tx(|tx| {
            topic_info(tx, project, topic)?;
            queue_limits(tx, project, queue)?;
            tx.execute(
                "INSERT OR REPLACE INTO subscriptions (project, topic, queue, kind, target, filter)
                 VALUES (?1, ?2, ?3, 'queue', ?3, ?4)",
                params![
                    project,
                    topic,
                    queue,
                    serde_json::to_string(filter).unwrap_or_default()
                ],
            )?;
            Ok(())
        })
    }

    pub(super) fn unsubscribe_queue(
        &self,
        project: &str,
        topic: &str,
        queue: &str,
    ) -> Result<bool, EventError> {
        let n = self.lock().execute(
            "DELETE FROM subscriptions WHERE project = ?1 AND topic = ?2 AND queue = ?3 AND kind = 'queue'",
            params![project, topic, queue],
        )?;
        Ok(n > 0)
    }

    pub(super) fn publish(
        &self,
        project: &str,
        topic: &str,
        message: NewMessage,
    ) -> Result<(String, Vec<String>), EventError> {
        self.tx(|tx| {
            topic_info(tx, project, topic)?;
            let subs: Vec<(String, String)> = tx
                .prepare_cached(
                    "SELECT queue, filter FROM subscriptions WHERE project = ?1 AND topic = ?2",
                )?
                .query_map(params![project, topic], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let id = message.id.clone().unwrap_or_else(new_id);
            let message = NewMessage {
                id: Some(id.clone()),
                ..message
            };
            let mut delivered = Vec::new();
            for (queue, filter) in subs {
                let filter: Filter = serde_json::from_str(&filter).unwrap_or_default();
                if filter.matches(&message.attributes) {
                    send_to(tx, project, &queue, vec![message.clone()])?;
                    delivered.push(queue);
                }
            }
            Ok((id, delivered))
        })
    }

    pub(super) fn last_slot(
        &self,
        project: &str,
        function: &str,
        key: &str,
    ) -> Result<Option<i64>, EventError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT last_slot_ms FROM schedules WHERE project = ?1 AND function = ?2 AND key = ?3",
                params![project, function, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(super) fn fire(
        &self,
        project: &str,
        function: &str,
        key: &str,
        slot_ms: i64,
        queue: &str,
        message: NewMessage,
    ) -> Result<bool, EventError> {
        self.tx(|tx| {
            let n = tx.execute(
                "UPDATE schedules SET last_slot_ms = ?4
                 WHERE project = ?1 AND function = ?2 AND key = ?3 AND last_slot_ms < ?4",
                params![project, function, key, slot_ms],
            )?;
            if n == 0 {
                return Ok(false);
            }
            send_to(tx, project, queue, vec![message])?;
            Ok(true)
        })
    }

    pub(super) fn submit_async(
        &self,
        project: &str,
        function: &str,
        queue: &str,
        idempotency_key: Option<&str>,
        message: NewMessage,
    ) -> Result<(AsyncInvocation, bool), EventError> {
        self.tx(|tx| {
            if let Some(k) = idempotency_key {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT id FROM async_invocations WHERE project = ?1 AND function = ?2 AND idem_key = ?3",
                        params![project, function, k],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = existing {
                    return Ok((read_async(tx, project, &id)?, false));
                }
            }
            let id = message.id.clone().unwrap_or_else(new_id);
            let now = now_ms();
            send_to(
                tx,
                project,
                queue,
                vec![NewMessage {
                    id: Some(id.clone()),
                    ..message
                }],
            )?;
            tx.execute(
                "INSERT INTO async_invocations (project, id, function, idem_key, status, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5)",
                params![project, id, function, idempotency_key, now],
            )?;
            Ok((read_async(tx, project, &id)?, true))
        })
    }

    pub(super) fn async_invocation(
        &self,
        project: &str,
        id: &str,
    ) -> Result<AsyncInvocation, EventError> {
        read_async(&self.lock(), project, id)
    }

    pub(super) fn sync_triggers(
        &self,
        project: &str,
        functions: &[FunctionTriggers],
        forgotten: &[String],
        now_ms: i64,
    ) -> Result<(), EventError> {
        self.tx(|tx| {
            for f in forgotten {
                forget(tx, project, f)?;
            }
            for f in functions {
                let q = QueueSpec::new(internal_queue(&f.function, Feed::Async));
                ensure_queue(tx, project, &q, true)?;
                set_consumers(tx, project, &f.function, &f.queues)?;
                set_subscriptions(tx, project, &f.function, &f.topics)?;
                set_schedules(tx, project, &f.function, &f.schedules, now_ms)?;
                super::feeds::set_feeds(tx, project, &f.function, &f.feeds)?;
            }
            Ok(())
        })
    }
}
