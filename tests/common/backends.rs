//! The store's contract is one suite run against both backends: [`on_both_backends!`] turns each
//! test function taking a [`TestStore`] into a SQLite test and a PostgreSQL test, each over a
//! database of its own. Without `DIALAJOKE_TEST_POSTGRES_URL` the PostgreSQL ones pass without
//! running (and `make test` says so loudly).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use dialajoke::domain::limits::Limits;
use dialajoke::domain::{CallId, DueAt, PhoneNumber, Schedule, Timezone};
use dialajoke::store::{self, NewCall, Store};
use tempfile::TempDir;

use super::postgres::{TestDatabase, server_url};

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// What keeps a test's database alive until the test ends: only dropping it matters.
enum Keep {
    Dir(#[expect(dead_code, reason = "held for its drop, which removes the folder")] TempDir),
    Database(#[expect(dead_code, reason = "held for its drop, which drops the database")] TestDatabase),
}

/// A store over a database of the test's own.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Its URL, to open more stores over the same database (more instances).
    pub url: String,
    /// Which backend it is.
    pub backend: Backend,
    /// The limits its writes keep to (and those of every other instance it opens).
    pub limits: Limits,
    // Declared last so the store closes before its database goes.
    _keep: Keep,
}

impl TestStore {
    /// Opens a store over a fresh database; None for PostgreSQL when no test server is set.
    pub async fn open(backend: Backend) -> Option<Self> {
        let (url, keep) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                (format!("sqlite://{}", dir.path().join("store.db").display()), Keep::Dir(dir))
            }
            Backend::Postgres => {
                let database = TestDatabase::create(&server_url()?).await;
                (database.url.clone(), Keep::Database(database))
            }
        };
        let store = store::open(&url, Limits::NONE).await.expect("store opens");
        Some(Self { store, url, backend, limits: Limits::NONE, _keep: keep })
    }

    /// The same database opened again as an instance whose writes keep to `limits` (as do those
    /// of the instances [`TestStore::another_instance`] opens from it).
    pub async fn with_limits(self, limits: Limits) -> Self {
        let store = store::open(&self.url, limits).await.expect("store opens with limits");
        Self { store, limits, ..self }
    }

    /// Another store over the same database, as a second instance would open it.
    pub async fn another_instance(&self) -> Arc<dyn Store> {
        store::open(&self.url, self.limits).await.expect("store opens again")
    }

    /// Stores a scheduled call to an Irish number, due at `due`.
    pub async fn add_call(&self, due: DateTime<Utc>) -> CallId {
        let schedule = Schedule {
            to: PhoneNumber::parse("+353 1 234 5678").expect("valid"),
            due_at: DueAt::from_stored(due),
            timezone: Timezone::parse("UTC").expect("zone"),
            note: None,
        };
        let id = CallId::new();
        self.store.insert_call(&NewCall { id, schedule, idempotency: None }).await.expect("stored");
        id
    }

    /// The store's clock, the one every due time is measured against.
    pub async fn now(&self) -> DateTime<Utc> {
        self.store.now().await.expect("the store tells the time")
    }
}

/// Turns each named `async fn NAME(store: TestStore)` into the tests `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let store = $crate::backends::TestStore::open($crate::backends::Backend::Sqlite)
                        .await
                        .expect("SQLite always opens");
                    super::$test(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = $crate::backends::Backend::Postgres;
                    let Some(store) = $crate::backends::TestStore::open(backend).await else {
                        eprintln!("SKIPPED {}: DIALAJOKE_TEST_POSTGRES_URL is not set", stringify!($test));
                        return;
                    };
                    super::$test(store).await;
                }
            )*
        }
    };
}
pub use crate::on_both_backends;

/// Polls `probe` (bounded by [`super::FLOW_BOUND`]) until it gives a value.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    super::poll::poll_until(what, super::FLOW_BOUND, || {
        let probed = probe();
        async move { probed.await.ok_or(()) }
    })
    .await
}
