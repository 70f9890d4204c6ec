//! Recurring rules as the web shows them: the JSON API (`/api/schedules`, a path kept for its
//! clients) and the page's forms.

pub mod api;
pub mod pages;
