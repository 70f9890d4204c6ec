//! A PostgreSQL database of its own for each test, on the server `DIALAJOKE_TEST_POSTGRES_URL`
//! names, so tests run side by side and leave nothing behind: it is dropped when the test ends,
//! whether it passed or not.

use sqlx::{Connection, Executor, PgConnection};

/// The variable naming the PostgreSQL server tests may use, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub const URL_VAR: &str = "DIALAJOKE_TEST_POSTGRES_URL";

/// Set to `1` (CI does), a PostgreSQL test that finds no server fails instead of skipping.
pub const REQUIRE_VAR: &str = "DIALAJOKE_REQUIRE_POSTGRES";

/// The server tests may use, or None when `DIALAJOKE_TEST_POSTGRES_URL` is not set (`make test`
/// then says loudly that the PostgreSQL tests were skipped). With `DIALAJOKE_REQUIRE_POSTGRES=1`
/// a missing server fails the test that wanted it.
pub fn server_url() -> Option<String> {
    let url = std::env::var(URL_VAR).ok().filter(|url| !url.trim().is_empty());
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|value| value == "1");
    assert!(url.is_some() || !required, "{REQUIRE_VAR}=1 but {URL_VAR} is not set: this test needs PostgreSQL");
    url
}

/// A fresh database, dropped with this value.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// Creates an empty database on `server` (a URL of any database there).
    pub async fn create(server: &str) -> Self {
        let name = format!("dialajoke_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server).await.expect("the test PostgreSQL server answers");
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("test database created");
        admin.close().await.expect("admin connection closed");
        let mut url = reqwest::Url::parse(server).expect("the test PostgreSQL URL is a URL");
        url.set_path(&name);
        Self { url: url.to_string(), name, server: server.to_owned() }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside a runtime (or while a failed test unwinds): a thread of its own
        // with its own runtime can still wait for the database to go.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await.map_err(std::io::Error::other)?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                admin.execute(sql.as_str()).await.map_err(std::io::Error::other)?;
                admin.close().await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}: {dropped:?}", self.name);
        }
    }
}
