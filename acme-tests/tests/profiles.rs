//! Profiles with a real client (issue 4): instant-acme 0.8.5 reads `meta.profiles`, orders a
//! `tlsclient` certificate with `NewOrder::profile`, and gets a client certificate whose
//! extended key usage and validity are the profile's.
//!
//! certbot 2.1 (Debian's) has no `--preferred-profile` (`certbot --help all` mentions no
//! profile), so instant-acme is the only client here that asks for a profile.

use std::time::Duration;

use acme_tests::Environment;
use acme_tests::clients::instant::ChallengeServer;
use acme_tests::verify::verify_pem;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Error, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Polling for the order: a fixed 250 ms interval, bounded by one minute.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.0)
    .timeout(Duration::from_secs(60));

/// The tlsclient profile's validity, and the default backdate.
const TLSCLIENT_VALIDITY: time::Duration = time::Duration::hours(24);
const BACKDATE: time::Duration = time::Duration::minutes(1);

async fn account(env: &Environment) -> Account {
    acme_tests::install_crypto_provider();
    let (account, _credentials) = Account::builder_with_root(&env.target().tls_root)
        .expect("an HTTPS client trusting the test root")
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            env.target().directory_url.clone(),
            None,
        )
        .await
        .expect("the account is created");
    account
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_reads_meta_profiles_and_issues_a_tlsclient_certificate() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let account = account(&env).await;

    let mut offered: Vec<(String, String)> = account
        .profiles()
        .map(|p| (p.name.to_owned(), p.description.to_owned()))
        .collect();
    offered.sort();
    let names: Vec<&str> = offered.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["hours", "shortlived", "tlsclient"]);
    assert!(
        offered
            .iter()
            .all(|(_, description)| !description.is_empty())
    );

    let name = "client.profiles.mayfly.test";
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers).profile("tlsclient"))
        .await
        .expect("the order is created");
    let server = ChallengeServer::start(env.target().http01_port)
        .await
        .expect("the http-01 server starts");
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.expect("the authorization is fetched");
        assert_eq!(authorization.status, AuthorizationStatus::Pending);
        let mut challenge = authorization
            .challenge(ChallengeType::Http01)
            .expect("an http-01 challenge");
        server.provision(&challenge.token, challenge.key_authorization().as_str());
        challenge
            .set_ready()
            .await
            .expect("the challenge is answered");
    }
    let status = order.poll_ready(&POLL).await.expect("the order gets ready");
    assert_eq!(status, OrderStatus::Ready);

    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("CSR parameters");
    params.distinguished_name = DistinguishedName::new();
    let key = KeyPair::generate().expect("a key");
    let csr = params.serialize_request(&key).expect("a CSR");
    let before = time::OffsetDateTime::now_utc();
    order.finalize_csr(csr.der()).await.expect("finalized");
    let chain = order
        .poll_certificate(&POLL)
        .await
        .expect("the certificate is downloaded");
    let after = time::OffsetDateTime::now_utc();

    let root = std::fs::read(&env.target().issuer_root).expect("the root");
    verify_pem(chain.as_bytes(), &root, &[name]).expect("the chain verifies");
    let leaf_der = Pem::iter_from_buffer(chain.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .contents;
    let (_, leaf) = X509Certificate::from_der(&leaf_der).expect("the leaf parses");
    let eku = leaf
        .extended_key_usage()
        .expect("one EKU extension")
        .expect("an EKU extension")
        .value;
    assert!(eku.client_auth, "clientAuth");
    assert!(!eku.server_auth, "no serverAuth");
    assert!(eku.other.is_empty());
    let not_before = leaf.validity().not_before.to_datetime();
    let not_after = leaf.validity().not_after.to_datetime();
    // Exact to the second: 24 h after issuance plus the 1-minute backdate.
    assert_eq!(not_after - not_before, TLSCLIENT_VALIDITY + BACKDATE);
    let issued_at = not_before + BACKDATE;
    let slack = time::Duration::seconds(1);
    assert!(
        issued_at >= before - slack && issued_at <= after + slack,
        "issued at {issued_at}, between {before} and {after}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_acme_gets_invalid_profile_for_an_unknown_profile() {
    let env = Environment::mayfly().await.expect("mayfly starts");
    let account = account(&env).await;
    let identifiers = [Identifier::Dns("unknown.profiles.mayfly.test".to_owned())];
    let error = account
        .new_order(&NewOrder::new(&identifiers).profile("classic"))
        .await
        .err()
        .expect("the order is refused");
    let Error::Api(problem) = error else {
        panic!("expected an ACME problem, got {error:?}");
    };
    assert_eq!(
        problem.r#type.as_deref(),
        Some("urn:ietf:params:acme:error:invalidProfile")
    );
    assert_eq!(problem.status, Some(400));
    assert_eq!(
        problem.detail.as_deref(),
        Some("profile \"classic\" is not offered; the profiles are hours, shortlived, tlsclient")
    );
}
