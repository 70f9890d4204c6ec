//! The simulator's own endpoints under `/sim/` (no authentication: the simulator is meant to
//! listen on loopback only): journal, calls, activity, faults and per-number behaviours.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::behaviour::{Behaviour, is_e164};
use crate::core::Core;
use crate::faults::Faults;

pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/sim/journal").route(web::get().to(journal)))
        .service(web::resource("/sim/calls").route(web::get().to(calls)))
        .service(web::resource("/sim/activity").route(web::get().to(activity)))
        .service(web::resource("/sim/faults").route(web::get().to(faults)).route(web::post().to(set_faults)))
        .service(
            web::resource("/sim/behaviours").route(web::get().to(behaviours)).route(web::post().to(set_behaviours)),
        );
}

async fn journal(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(core.journal.entries())
}

async fn calls(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(core.calls())
}

async fn activity(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(core.activity.current())
}

async fn faults(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(core.faults.current())
}

/// Replaces the faults in force (counts start over).
async fn set_faults(core: web::Data<Core>, faults: web::Json<Faults>) -> HttpResponse {
    core.faults.set(faults.into_inner());
    HttpResponse::Ok().json(core.faults.current())
}

async fn behaviours(core: web::Data<Core>) -> HttpResponse {
    HttpResponse::Ok().json(core.behaviours.overrides())
}

/// Adds or replaces per-number behaviours: `{"+12015550100": "busy", …}`.
async fn set_behaviours(core: web::Data<Core>, entries: web::Json<BTreeMap<String, Behaviour>>) -> HttpResponse {
    let entries = entries.into_inner();
    if let Some(bad) = entries.keys().find(|number| !is_e164(number)) {
        let error = format!("{bad:?} is not an E.164 number");
        return HttpResponse::BadRequest().json(json!({ "error": error }));
    }
    core.behaviours.set(entries);
    HttpResponse::Ok().json(core.behaviours.overrides())
}
