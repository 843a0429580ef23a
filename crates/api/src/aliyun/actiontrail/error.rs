//! ActionTrail 2020-07-06 refusals: the rules of `LookupEvents`' parameters, each with the
//! code and HTTP status of the LookupEvents error table.

/// Refusals that are rules of ActionTrail's `LookupEvents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionTrailRefusal {
    /// `StartTime` is not a `YYYY-MM-DDThh:mm:ssZ` UTC time; as given.
    StartTime(String),
    /// `EndTime` is not a `YYYY-MM-DDThh:mm:ssZ` UTC time; as given.
    EndTime(String),
    /// `EndTime` is earlier than `StartTime`.
    TimeOrder {
        /// StartTime, as given or defaulted.
        start: String,
        /// EndTime, as given or defaulted.
        end: String,
    },
    /// A query parameter the lookup does not take: a MaxResults, Direction or
    /// LookupAttribute out of its values, or a NextToken of another query.
    Query {
        /// The parameter (`MaxResults`, `LookupAttribute.1.Key`, `NextToken`).
        param: String,
        /// What it takes.
        reason: String,
    },
}

impl ActionTrailRefusal {
    /// The wire code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            ActionTrailRefusal::StartTime(_) => ("InvalidParameterStartTime", 400),
            ActionTrailRefusal::EndTime(_) => ("InvalidParameterEndTime", 400),
            ActionTrailRefusal::TimeOrder { .. } => ("InvalidParameterCombination", 400),
            ActionTrailRefusal::Query { .. } => ("InvalidQueryParameter", 400),
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            ActionTrailRefusal::StartTime(v) => format!(
                "The specified StartTime `{v}` is invalid: use a UTC time like 2020-10-08T11:00:00Z."
            ),
            ActionTrailRefusal::EndTime(v) => format!(
                "The specified EndTime `{v}` is invalid: use a UTC time like 2020-10-15T11:00:00Z."
            ),
            ActionTrailRefusal::TimeOrder { start, end } => format!(
                "The end time must not be earlier than the start time (StartTime {start}, EndTime {end})."
            ),
            ActionTrailRefusal::Query { param, reason } => {
                format!("The specified query parameter {param} is invalid: {reason}.")
            }
        }
    }
}
