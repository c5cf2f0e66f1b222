//! Rate limits (issue 7) across two replicas on one PostgreSQL database: the counts are in the
//! database, so a limit filled through one replica refuses on the other, with `rateLimited`
//! and `Retry-After`. Skipped, with a line on stderr, when `MAYFLY_TEST_POSTGRES_URL` is not
//! set.

use acme_tests::client::{AcmeClient, AcmeResponse, NEW_ACCOUNT_PATH, NEW_ORDER_PATH};
use acme_tests::postgres;
use acme_tests::replicas::ReplicaPair;
use reqwest::StatusCode;
use serde_json::{Value, json};

const A: usize = 0;
const B: usize = 1;

fn postgres_url() -> Option<String> {
    match std::env::var(postgres::URL_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("skipped: {} is not set", postgres::URL_ENV);
            None
        }
    }
}

/// POSTs `payload` to `path` at `replica`, with a nonce from that replica.
async fn post_at(
    client: &mut AcmeClient,
    replica: usize,
    path: &str,
    payload: &Value,
) -> AcmeResponse {
    let nonce = client.head_nonce_at(replica).await.expect("a nonce");
    client
        .post_at(replica, path, &nonce, Some(replica), Some(payload))
        .await
        .expect("the replica answers")
}

/// Asserts 429 `rateLimited` with a `Retry-After` within the hour.
fn assert_limited(response: &AcmeResponse, key: &str) {
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS, "{response}");
    assert_eq!(response.problem_type().as_deref(), Some("rateLimited"));
    let detail = response.json().expect("a problem document")["detail"]
        .as_str()
        .expect("a detail")
        .to_owned();
    assert!(detail.contains(&format!("(rate_limits.{key})")), "{detail}");
    let retry_after: u64 = response
        .headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    // The slot frees an hour after the oldest counted event, which was seconds ago.
    assert!(
        (3000..=3600).contains(&retry_after),
        "Retry-After {retry_after}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_shared_by_two_replicas() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let env = [
        ("MAYFLY__RATE_LIMITS__NEW_ORDERS_PER_ACCOUNT_PER_HOUR", "3"),
        ("MAYFLY__RATE_LIMITS__NEW_ACCOUNTS_PER_IP_PER_HOUR", "2"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let pair = ReplicaPair::start_with(&admin_url, &env)
        .await
        .expect("two replicas start on one database");

    // Orders: three through A, B and A fill the account's hour; both replicas refuse the next.
    let mut client = pair.acme_client().expect("an HTTPS client");
    client.new_account().await.expect("newAccount");
    let order = json!({"identifiers": [{"type": "dns", "value": "limits.mayfly.test"}]});
    for replica in [A, B, A] {
        let response = post_at(&mut client, replica, NEW_ORDER_PATH, &order).await;
        assert_eq!(response.status, StatusCode::CREATED, "{response}");
    }
    for replica in [B, A] {
        let response = post_at(&mut client, replica, NEW_ORDER_PATH, &order).await;
        assert_limited(&response, "new_orders_per_account_per_hour");
    }

    // Accounts from 127.0.0.1: the first client's and one through B fill the hour; A refuses
    // the third.
    let account = json!({"termsOfServiceAgreed": true});
    let mut second = pair.acme_client().expect("an HTTPS client");
    let response = post_at(&mut second, B, NEW_ACCOUNT_PATH, &account).await;
    assert_eq!(response.status, StatusCode::CREATED, "{response}");
    let mut third = pair.acme_client().expect("an HTTPS client");
    let response = post_at(&mut third, A, NEW_ACCOUNT_PATH, &account).await;
    assert_limited(&response, "new_accounts_per_ip_per_hour");
}
