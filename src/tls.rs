//! TLS client settings shared by the network edges: the system trust store plus an optional private CA file.

use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: cannot read CA file: {source}")]
    CaRead { path: String, source: std::io::Error },
    #[error("{path}: no PEM certificate found; expected a file with -----BEGIN CERTIFICATE-----")]
    CaEmpty { path: String },
    #[error("{path}: bad certificate: {message}")]
    CaBad { path: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls client config that trusts the system's CAs and, when given, the certificates in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, not fatal: a private CA may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaRead { path: shown.clone(), source })?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| TlsSetupError::CaBad { path: shown.clone(), message: e.to_string() })?;
            roots.add(cert).map_err(|e| TlsSetupError::CaBad { path: shown.clone(), message: e.to_string() })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsSetupError::CaEmpty { path: shown });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// True when an I/O error from a TLS handshake is the peer's certificate failing verification.
pub fn is_certificate_error(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(reason) => Some(format!("{reason:?}")),
        _ => None,
    }
}
