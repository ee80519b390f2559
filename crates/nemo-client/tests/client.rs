//! `Client` against the in-process simulator: the store's rules applied by
//! the client itself.

use std::sync::Arc;

use nemo_client::{Client, MemoryStore, Store};
use nemo_core::wire::Endpoint;
use nemo_mock::{InProcess, MockConfig};

fn client(mock: &InProcess, store: &MemoryStore) -> Client {
    Client::builder()
        .api_url(mock.url())
        .transport(Arc::new(mock.clone()))
        .store(store.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_second_client_reuses_the_identity_token_and_session() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut first = client(&mock, &store);
    assert_eq!(first.credits().await.unwrap().available, 100.0);
    let timeline = first.timeline().await.unwrap();
    assert!(!timeline.ready_for_export, "{timeline:?}");
    let id = store.client_id().expect("the client id is kept");
    assert!(store.token(mock.url()).is_some(), "the free token is kept");
    let session = first.session().unwrap();
    assert_eq!(
        store.last_session(mock.url()).unwrap().session_id,
        session.session_id
    );
    assert!(first.take_unsaved().is_empty());

    let mut second = client(&mock, &store);
    second.credits().await.unwrap();
    assert_eq!(store.client_id(), Some(id));
    assert_eq!(
        mock.journal().count(Endpoint::AnonymousToken),
        1,
        "one free token for both"
    );
}

#[tokio::test]
async fn two_installs_never_share_a_client_id() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let (a, b) = (MemoryStore::new(), MemoryStore::new());
    client(&mock, &a).credits().await.unwrap();
    client(&mock, &b).credits().await.unwrap();
    assert_ne!(a.client_id().unwrap(), b.client_id().unwrap());
    assert_eq!(mock.journal().count(Endpoint::AnonymousToken), 2);
}

#[test]
fn an_api_url_that_is_not_http_is_refused() {
    let e = Client::builder().api_url("ftp://x").build().unwrap_err();
    assert!(e.message.contains("http://"), "{}", e.message);
}
