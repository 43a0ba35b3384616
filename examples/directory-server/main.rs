//! # directory-server
//!
//! Switchboard in a real service: SCIM 2.0 provisioning (RFC 7643/7644)
//! under `/scim/v2` for identity providers, and the admin JSON API under
//! `/api/v1` for the admin screens, on axum and tokio.
//!
//! ```text
//! cargo run --example directory-server            # memory store, 127.0.0.1:8080
//! DATABASE_URL=postgres://… cargo run --example directory-server
//! ```
//!
//! Configuration (flags win over environment variables):
//!
//! | flag | env | default |
//! |---|---|---|
//! | `--listen ADDR` | `LISTEN_ADDR` | `127.0.0.1:8080` |
//! | `--org-id UUID` | `ORG_ID` | a fixed id, so a restart finds the organization |
//! | `--org-name NAME` | `ORG_NAME` | `Northwind` |
//! | `--owner-email EMAIL` | `OWNER_EMAIL` | `owner@northwind.example` |
//! | `--token TOKEN` (repeatable) | `API_TOKENS` (comma-separated) | `dev-token` |
//! | `--max-feeds N` | `MAX_LIVE_FEEDS` | 64 live event feeds at once |
//! | — | `DATABASE_URL` | unset: the memory store |
//!
//! Every token acts as the bootstrap organization's primary owner. With
//! PostgreSQL, the migrations are applied explicitly at start. Ctrl-C (or
//! SIGTERM) stops accepting connections and lets requests in flight finish.
//!
//! How SCIM's model meets the domain is written in [`scim`]'s module docs;
//! the security model in [`app`]'s.
#![forbid(unsafe_code)]

mod admin;
mod app;
mod scim;

use std::sync::Arc;
use switchboard::{Actor, OrgId, SharedStore};

/// The default bootstrap organization id.
const DEFAULT_ORG: &str = "0190c0de-0000-7000-8000-000000000001";

struct Config {
    listen: String,
    org: OrgId,
    org_name: String,
    owner_email: String,
    tokens: Vec<String>,
    database_url: Option<String>,
    max_feeds: usize,
}

fn config() -> Result<Config, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut c = Config {
        listen: env("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
        org: OrgId::from_uuid(
            uuid::Uuid::parse_str(&env("ORG_ID").unwrap_or_else(|| DEFAULT_ORG.into()))
                .map_err(|e| format!("ORG_ID: {e}"))?,
        ),
        org_name: env("ORG_NAME").unwrap_or_else(|| "Northwind".into()),
        owner_email: env("OWNER_EMAIL").unwrap_or_else(|| "owner@northwind.example".into()),
        tokens: env("API_TOKENS")
            .map(|t| t.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default(),
        database_url: env("DATABASE_URL"),
        max_feeds: match env("MAX_LIVE_FEEDS") {
            Some(n) => n.parse().map_err(|e| format!("MAX_LIVE_FEEDS: {e}"))?,
            None => app::MAX_LIVE_FEEDS,
        },
    };
    let mut args = std::env::args().skip(1);
    let mut flag_tokens = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => c.listen = value()?,
            "--org-id" => {
                c.org = OrgId::from_uuid(
                    uuid::Uuid::parse_str(&value()?).map_err(|e| format!("--org-id: {e}"))?,
                )
            }
            "--org-name" => c.org_name = value()?,
            "--owner-email" => c.owner_email = value()?,
            "--token" => flag_tokens.push(value()?),
            "--max-feeds" => {
                c.max_feeds = value()?
                    .parse()
                    .map_err(|e| format!("--max-feeds: {e}"))?
            }
            "--help" | "-h" => {
                return Err("usage: directory-server [--listen ADDR] [--org-id UUID] [--org-name NAME] [--owner-email EMAIL] [--token TOKEN]... [--max-feeds N]".into())
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !flag_tokens.is_empty() {
        c.tokens = flag_tokens;
    }
    c.tokens.retain(|t| !t.is_empty());
    if c.tokens.is_empty() {
        c.tokens.push("dev-token".into());
    }
    Ok(c)
}

async fn store(config: &Config) -> Result<SharedStore, Box<dyn std::error::Error>> {
    match &config.database_url {
        None => {
            tracing::info!(store = "memory", "store ready (nothing survives a restart)");
            Ok(Arc::new(switchboard_store_memory::MemoryStore::new()))
        }
        Some(url) => {
            let store = switchboard_store_postgres::PostgresStore::connect(url).await?;
            let applied = store.migrate().await?;
            tracing::info!(
                store = "postgres",
                migrations_applied = applied,
                "store ready"
            );
            Ok(Arc::new(store))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spans are printed as they close: each request (method, path, request
    // id, status) and, inside it, each command (`switchboard.handle`: the
    // organization, the command's name and id, outcome, version). No field
    // carries personal data: paths hold ids, never the query string.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let config = config()?;
    let state = app::AppState::new(store(&config).await?).with_feed_limit(config.max_feeds);
    let owner =
        app::bootstrap_org(&state, config.org, &config.org_name, &config.owner_email).await?;
    for token in &config.tokens {
        state.add_token(
            token.clone(),
            app::Tenant {
                org: config.org,
                actor: Actor::user(owner),
            },
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        org = %config.org,
        tokens = config.tokens.len(),
        "serving SCIM at /scim/v2 and the admin API at /api/v1"
    );
    let router = app::router(state.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Live feeds never end on their own: end them, so that the
            // shutdown waits only for ordinary requests.
            state.begin_shutdown();
        })
        .await?;
    Ok(())
}
