//! Starting and stopping moto.

use std::time::Duration;

use local_stack::moto::{Moto, repo_root};

#[tokio::test]
async fn start_answers_and_drop_kills() {
    let moto = Moto::start(&repo_root()).unwrap();
    let endpoint = moto.endpoint.clone();
    let clients = tier_runtime::AwsClients::local(&endpoint);
    clients.sqs.list_queues().send().await.unwrap();
    clients.dynamodb.list_tables().send().await.unwrap();
    let pid = moto.pid();
    drop(moto);
    // The process is gone (reaped) and the port no longer answers.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    // Every reqwest client of this workspace is built with the process's
    // TLS provider.
    tier_runtime::tls::install_crypto_provider();
    let probe = tokio::time::timeout(
        Duration::from_secs(3),
        reqwest::get(format!("{endpoint}/moto-api/")),
    )
    .await;
    assert!(matches!(probe, Ok(Err(_))), "moto still answers after drop");
}

#[test]
fn missing_binary_names_the_venv_script() {
    let dir = std::env::temp_dir().join(format!("no-venv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // MOTO_SERVER_BIN would bypass the lookup; this test does not set it.
    if std::env::var_os("MOTO_SERVER_BIN").is_some() {
        return;
    }
    let err = Moto::start(&dir).unwrap_err().to_string();
    assert!(err.contains("scripts/venv.sh moto"), "{err}");
}

#[test]
fn shared_is_one_server() {
    let a = Moto::shared();
    let b = Moto::shared();
    assert_eq!(a, b);
    assert!(a.starts_with("http://"));
}
