//! Shared by the local stack's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use local_stack::moto::Moto;
use local_stack::template::Template;
use tier_runtime::AwsClients;

pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/template.yaml")
}

pub fn fixture() -> Template {
    Template::from_path(&fixture_path()).expect("fixture template parses")
}

/// The real SAM template, if it exists yet.
pub fn real_template_path() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
    path.exists().then_some(path)
}

pub fn clients() -> AwsClients {
    AwsClients::local(Moto::shared())
}

/// A fresh prefix per test, so tests can share one moto server in parallel.
pub fn prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}
