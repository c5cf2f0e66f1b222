//! Issue 4, ACME Renewal Information (RFC 9773), with instant-acme against a real
//! `mayfly serve`: the window of an issued certificate, a window moved with
//! `mayfly admin ari` while the server runs, and `replaces` in newOrder (once, then
//! `alreadyReplaced`).
//!
//! lego (Debian's 4.9) has no `renew --ari-enable`: `lego renew --help` lists no ARI option,
//! so instant-acme's `Account::renewal_info` is the client that reads the window.

use std::time::Duration as StdDuration;

use acme_tests::Environment;
use acme_tests::clients::instant::ChallengeServer;
use acme_tests::clients::instant_ari::{Client, Solver, Validated};
use acme_tests::environment::Server;
use acme_tests::mayfly::output_text;
use instant_acme::{CertificateIdentifier, Identifier};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const NAME: &str = "ari.example";

fn validity(der: &[u8]) -> (OffsetDateTime, OffsetDateTime) {
    let (_, cert) = X509Certificate::from_der(der).expect("the leaf parses");
    (
        cert.validity().not_before.to_datetime(),
        cert.validity().not_after.to_datetime(),
    )
}

/// The certificate's ARI id as instant-acme computes it, checked against Mayfly's own.
fn cert_id(der: &[u8]) -> CertificateIdentifier<'static> {
    let id = CertificateIdentifier::try_from(&CertificateDer::from(der.to_vec()))
        .expect("instant-acme reads the AKI and serial")
        .into_owned();
    let ours = mayfly::policy::renewal::CertId::from_certificate_der(der).expect("Mayfly too");
    assert_eq!(id.to_string(), ours.to_string());
    id
}

/// `mayfly admin ari ARGS` over the admin API, as an operator runs it next to the server.
async fn admin_ari(env: &Environment, args: &[&str]) -> std::process::Output {
    let Server::Mayfly(server) = env.server() else {
        panic!("these tests run against Mayfly")
    };
    let args: Vec<&str> = ["ari"].into_iter().chain(args.iter().copied()).collect();
    server.admin(&args).await.expect("mayfly admin ari runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_reads_the_window_and_sees_an_administrator_move_it() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let leaf = client.issue(&http, &[NAME]).await.expect("issued");
    let id = cert_id(&leaf);

    // The computed window: a short certificate, renewed at half of its lifetime ±1 %.
    let (not_before, not_after) = validity(&leaf);
    let lifetime = (not_after - not_before).whole_seconds();
    let centre = not_before + Duration::seconds(lifetime / 2);
    let margin = Duration::seconds(lifetime / 100);
    let (info, retry) = client
        .account
        .renewal_info(&id)
        .await
        .expect("renewalInfo answers");
    assert_eq!(info.suggested_window.start, centre - margin);
    assert_eq!(info.suggested_window.end, centre + margin);
    // Retry-After: at most 6 h, and at most a quarter of the lifetime.
    let quarter = StdDuration::from_secs(u64::try_from(lifetime / 4).unwrap());
    assert!(
        retry <= StdDuration::from_secs(6 * 3600).min(quarter),
        "{retry:?}"
    );
    assert!(retry > StdDuration::ZERO, "{retry:?}");

    // An incident: renew now. The running server answers the moved window at once.
    let before = OffsetDateTime::now_utc() - Duration::seconds(1);
    let moved = admin_ari(&env, &["renew-now", &id.to_string()]).await;
    assert!(moved.status.success(), "{}", output_text(&moved));
    let (info, _) = client.account.renewal_info(&id).await.expect("renewalInfo");
    let start = info.suggested_window.start;
    assert!(
        start >= before && start <= OffsetDateTime::now_utc(),
        "{start}"
    );
    assert_eq!(info.suggested_window.end - start, Duration::minutes(5));

    // An explicit window, by serial number.
    let serial =
        mayfly::issuer::serial_hex(X509Certificate::from_der(&leaf).unwrap().1.raw_serial());
    let moved = admin_ari(
        &env,
        &[
            "move",
            &serial,
            "--start",
            "2030-01-01T00:00:00Z",
            "--end",
            "2030-01-01T06:00:00Z",
        ],
    )
    .await;
    assert!(moved.status.success(), "{}", output_text(&moved));
    let (info, _) = client.account.renewal_info(&id).await.expect("renewalInfo");
    assert_eq!(
        info.suggested_window.start,
        OffsetDateTime::new_utc(
            time::Date::from_calendar_date(2030, time::Month::January, 1).unwrap(),
            time::Time::MIDNIGHT
        )
    );
    assert_eq!(
        info.suggested_window.end - info.suggested_window.start,
        Duration::hours(6)
    );

    // Back to the computed window.
    let reset = admin_ari(&env, &["reset", &serial]).await;
    assert!(reset.status.success(), "{}", output_text(&reset));
    let (info, _) = client.account.renewal_info(&id).await.expect("renewalInfo");
    assert_eq!(info.suggested_window.start, centre - margin);

    // Exit codes: 1 for an unknown certificate, 2 for bad usage.
    let unknown = admin_ari(&env, &["renew-now", "4a0b0c0d"]).await;
    assert_eq!(unknown.status.code(), Some(1), "{}", output_text(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no certificate 4a0b0c0d"),
        "{}",
        output_text(&unknown)
    );
    let backwards = admin_ari(
        &env,
        &["move", &serial, "--start", "now+1h", "--end", "now"],
    )
    .await;
    assert_eq!(
        backwards.status.code(),
        Some(2),
        "{}",
        output_text(&backwards)
    );
    let garbage = admin_ari(&env, &["move", &serial, "--start", "soon", "--end", "now"]).await;
    assert_eq!(garbage.status.code(), Some(2), "{}", output_text(&garbage));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_replaces_a_certificate_once() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let client = Client::new(env.target()).await.expect("an account");
    let http = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let leaf = client.issue(&http, &[NAME]).await.expect("issued");
    let id = cert_id(&leaf);
    let identifiers = [Identifier::Dns(NAME.to_owned())];

    // instant-acme itself checks that the order echoes `replaces`.
    let mut order = client
        .order(&identifiers, Some(id.clone()))
        .await
        .expect("the replacing order is accepted");
    assert_eq!(
        order.state().replaces.as_ref().map(ToString::to_string),
        Some(id.to_string())
    );
    match client.validate(&mut order, &Solver::Http01(&http)).await {
        Ok(Validated::Ready) => {}
        other => panic!("the replacing order is not ready: {other:?}"),
    }
    let renewed = client.finalize(&mut order, &[NAME]).await.expect("renewed");
    assert_ne!(cert_id(&renewed).to_string(), id.to_string());

    let again = client.order(&identifiers, Some(id.clone())).await;
    match again {
        Err(instant_acme::Error::Api(problem)) => {
            assert_eq!(
                problem.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:alreadyReplaced"),
                "{problem:?}"
            );
            assert_eq!(problem.status, Some(409), "{problem:?}");
        }
        other => panic!(
            "expected alreadyReplaced, got {:?}",
            other.map(|_| "an order")
        ),
    }

    // Another account cannot name it.
    let stranger = Client::new(env.target()).await.expect("an account");
    match stranger.order(&identifiers, Some(cert_id(&renewed))).await {
        Err(instant_acme::Error::Api(problem)) => {
            assert_eq!(
                problem.r#type.as_deref(),
                Some("urn:ietf:params:acme:error:malformed"),
                "{problem:?}"
            );
            assert!(
                problem
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .contains("issued to another account"),
                "{problem:?}"
            );
        }
        other => panic!("expected malformed, got {:?}", other.map(|_| "an order")),
    }
}
