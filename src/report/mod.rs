//! Reporters: analysis events and finished connection records in (the [`crate::record::Sink`] interface of
//! [`crate::record`]), output for people (table) or programs (json, jsonl) out.

pub mod json;
pub mod jsonl;
pub mod table;
pub mod why;

/// Writes and flushes, remembering the first error (a closed pipe ends the run quietly).
pub(crate) struct Output {
    writer: Box<dyn std::io::Write>,
    /// First write error.
    pub error: Option<std::io::Error>,
}

impl Output {
    pub(crate) fn new(writer: Box<dyn std::io::Write>) -> Self {
        Output {
            writer,
            error: None,
        }
    }

    pub(crate) fn write_all(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.writer.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.flush()
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn result(&mut self) -> std::io::Result<()> {
        self.flush();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Has writing failed (e.g. the reader of a pipe went away)?
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }
}
