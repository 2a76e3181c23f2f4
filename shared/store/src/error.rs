use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes with which DynamoDB and SQS refuse a request as such: the
/// same request fails the same way every time.
const REFUSALS: [&str; 4] = [
    "ValidationException",
    "SerializationException",
    "InvalidParameterValue",
    "InvalidMessageContents",
];

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
    /// A write would store what no read can parse back (a month past 9999,
    /// say): refused before it is sent, so one bad value cannot make an
    /// item unreadable. Permanent: the same input fails the same way.
    #[error("item {pk}/{sk} cannot be written: {reason}")]
    Unwritable {
        pk: String,
        sk: String,
        reason: String,
    },
    /// A batch call succeeded but left some of its entries undone
    /// (SendMessageBatch's `Failed`); sending them again may succeed.
    #[error("{operation} left an entry undone: {detail}")]
    Partial {
        operation: &'static str,
        detail: String,
    },
    /// The AWS call itself failed (throttling, network, service error).
    /// `detail` is the SDK's full context, which its `Display` leaves out.
    #[error("{operation} failed: {detail}")]
    Aws {
        operation: &'static str,
        detail: String,
        /// The service refused the request itself (`ValidationException`:
        /// an item over 400 KB, say): sending it again cannot succeed.
        refused: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        let refused = matches!(&err, SdkError::ServiceError(_))
            && err.code().is_some_and(|c| REFUSALS.contains(&c));
        StoreError::Aws {
            operation,
            detail,
            refused,
            source: Box::new(err),
        }
    }

    /// Whether trying the same thing again may succeed. An item that cannot
    /// be read or written stays so until someone changes it.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            StoreError::Corrupt { .. }
                | StoreError::Unwritable { .. }
                | StoreError::Aws { refused: true, .. }
        )
    }

    pub fn unwritable(key: &(String, String), reason: impl Into<String>) -> Self {
        StoreError::Unwritable {
            pk: key.0.clone(),
            sk: key.1.clone(),
            reason: reason.into(),
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
