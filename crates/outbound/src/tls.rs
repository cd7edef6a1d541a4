//! The TLS set-up every call shares: the system's roots (Debian's
//! `ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR` of the worker's
//! own environment) plus an optional PEM file, with rustls' ring provider;
//! no session resumption.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

pub(crate) fn client_config(extra_ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        // A worker without ca-certificates still serves functions that
        // call only hosts of the extra CA, or plain http.
        log::warn!(
            "outbound: no system root certificate found ({} error(s), {ignored} unparsable); https needs --outbound-ca-file",
            native.errors.len()
        );
    }
    if let Some(path) = extra_ca_file {
        let named = |why: String| format!("outbound CA file {}: {why}", path.display());
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| named(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| named(e.to_string()))?;
        if certs.is_empty() {
            return Err(named("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| named(format!("not a usable CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("outbound TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // We hand reqwest a finished configuration, so ALPN is ours to offer.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // One configuration serves every function of the worker: a session
    // cache in it would let a function resume (and so learn of) another's
    // sessions, and link their requests for the servers. Every connection
    // makes a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_naming_it() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("faas-outbound-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.contains("empty.pem") && err.contains("no PEM"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
