//! Calls as the web shows them: the JSON API and the pages.

pub mod api;
pub mod pages;
