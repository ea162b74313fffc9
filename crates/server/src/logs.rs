//! Routes every invocation's log lines to the store's background log writer.

use std::sync::Arc;

use updraft_engine::{LogSink, Stream};
use updraft_gateway::{Function, LogSinks};
use updraft_store::{LogRecord, LogWriter, now_ms};

pub(crate) struct StoreSinks {
    writer: LogWriter,
}

impl StoreSinks {
    pub(crate) fn new(writer: LogWriter) -> Self {
        Self { writer }
    }
}

impl LogSinks for StoreSinks {
    fn sink(&self, function: &Function, request_id: &str) -> Arc<dyn LogSink> {
        Arc::new(StoreSink {
            writer: self.writer.clone(),
            project: function.project.clone(),
            function: function.name.clone(),
            request_id: request_id.to_owned(),
        })
    }
}

struct StoreSink {
    writer: LogWriter,
    project: String,
    function: String,
    request_id: String,
}

impl LogSink for StoreSink {
    fn line(&self, stream: Stream, line: &str) {
        write(
            &self.writer,
            &self.project,
            &self.function,
            &self.request_id,
            stream,
            line,
        );
    }
}

/// Queues one line of `function`'s log, stamped now.
pub(crate) fn write(
    writer: &LogWriter,
    project: &str,
    function: &str,
    request_id: &str,
    stream: Stream,
    line: &str,
) {
    writer.write(LogRecord {
        id: 0,
        project: project.to_owned(),
        function: function.to_owned(),
        request_id: request_id.to_owned(),
        ts_ms: now_ms(),
        stream: stream.as_str().to_owned(),
        line: line.to_owned(),
    });
}
