use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

/// What can go wrong talking to the table or the queues.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost a race too many times in a row.
    #[error("gave up after {attempts} conflicting writes on {what}")]
    Contention { what: String, attempts: u32 },
    /// An item exists but cannot be read back: a bug or a manual edit.
    #[error("item {pk}/{sk} is corrupt: {reason}")]
    Corrupt {
        pk: String,
        sk: String,
        reason: String,
    },
    /// The AWS call itself failed (throttling, network, service error).
    /// `detail` is the SDK's full context, which its `Display` leaves out.
    #[error("{operation} failed: {detail}")]
    Aws {
        operation: &'static str,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        StoreError::Aws {
            operation,
            detail,
            source: Box::new(err),
        }
    }

    pub fn corrupt(key: &(String, String), reason: impl Into<String>) -> Self {
        StoreError::Corrupt {
            pk: key.0.clone(),
            sk: key.1.clone(),
            reason: reason.into(),
        }
    }
}
