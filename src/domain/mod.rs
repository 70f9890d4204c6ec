//! The domain: values that can only be built valid (ids, phone numbers, instants and zones, local
//! times, calling hours, limits), the call and rule records, the one state machine, and the pure
//! decisions (answering-machine and retry policies, recurrence, a rule's next call). Nothing here
//! does I/O or knows of a database, HTTP or Telnyx; every other layer builds on it.

pub mod call;
pub mod clock;
pub mod country_zones;
pub mod hours;
pub mod ids;
pub mod limits;
pub mod local_time;
pub mod machine;
pub mod outcomes;
pub mod phone;
pub mod plan;
pub mod policy;
pub mod recurrence;
pub mod retry;
pub mod rule;
pub mod rule_input;
pub mod schedule;
pub mod state;

pub use call::{Call, HistoryEntry};
pub use ids::{CallId, RuleId};
pub use phone::{NumberType, PhoneError, PhoneNumber};
pub use recurrence::{Kind, Occurrence, Recurrence};
pub use rule::{CatchUp, NewRule, Rule, RuleStatus};
pub use schedule::{DueAt, FieldError, Schedule, ScheduleInput, ScheduleRules, Timezone, ValidationErrors};
pub use state::{CallEvent, CallStatus, Transition};
