//! `TestCerts`: a throwaway PKI made at test time with the `openssl` CLI, for
//! TLS tests: a CA, a server certificate it signed (SAN `IP:127.0.0.1`,
//! `DNS:localhost`), a client certificate it signed, and an unrelated second
//! CA for "wrong CA" tests. EC P-256 keys: the whole set takes ~0.1 s.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs ring as rustls's process-wide crypto provider (the redis crate's
/// rustls has none of its own). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// PEM files in a temp dir, removed when dropped.
#[derive(Debug)]
pub struct TestCerts {
    dir: tempfile::TempDir,
}

/// Extensions of a leaf certificate: `extendedKeyUsage` and the SAN, if any.
const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
    keyUsage=critical,digitalSignature\n\
    extendedKeyUsage=serverAuth,clientAuth\n\
    subjectAltName=IP:127.0.0.1,DNS:localhost\n";
const CLIENT_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
    keyUsage=critical,digitalSignature\n\
    extendedKeyUsage=clientAuth\n";

impl TestCerts {
    /// Generates the CA, server and client certificates and the second CA
    /// (valid for 2 days). Panics with openssl's output if it fails.
    #[must_use]
    pub fn generate() -> Self {
        install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("spool-certs-")
            .tempdir()
            .expect("temp dir for certificates");
        let certs = Self { dir };
        certs.make_ca("ca", "Spool test CA");
        certs.make_ca("other-ca", "Spool unrelated CA");
        certs.make_leaf("server", "localhost", SERVER_EXT, 2);
        certs.make_leaf("client", "spool-test-client", CLIENT_EXT, 3);
        certs
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn make_ca(&self, name: &str, cn: &str) {
        openssl(&[
            "req".as_ref(),
            "-x509".as_ref(),
            "-new".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:P-256".as_ref(),
            "-nodes".as_ref(),
            "-keyout".as_ref(),
            self.path(&format!("{name}.key")).as_os_str(),
            "-out".as_ref(),
            self.path(&format!("{name}.pem")).as_os_str(),
            "-subj".as_ref(),
            format!("/CN={cn}").as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
        ]);
    }

    fn make_leaf(&self, name: &str, cn: &str, ext: &str, serial: u32) {
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        let ext_file = self.path(&format!("{name}.ext"));
        std::fs::write(&ext_file, ext).expect("write an openssl extensions file");
        openssl(&[
            "req".as_ref(),
            "-new".as_ref(),
            "-newkey".as_ref(),
            "ec".as_ref(),
            "-pkeyopt".as_ref(),
            "ec_paramgen_curve:P-256".as_ref(),
            "-nodes".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            csr.as_os_str(),
            "-subj".as_ref(),
            format!("/CN={cn}").as_ref(),
        ]);
        openssl(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            self.ca_cert().as_os_str(),
            "-CAkey".as_ref(),
            self.path("ca.key").as_os_str(),
            "-set_serial".as_ref(),
            serial.to_string().as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-sha256".as_ref(),
            "-extfile".as_ref(),
            ext_file.as_os_str(),
            "-out".as_ref(),
            self.path(&format!("{name}.pem")).as_os_str(),
        ]);
    }

    /// The directory holding every file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// The server certificate (PEM; SAN `IP:127.0.0.1`, `DNS:localhost`).
    #[must_use]
    pub fn server_cert(&self) -> PathBuf {
        self.path("server.pem")
    }

    /// The server's private key (PEM, PKCS#8).
    #[must_use]
    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// The client certificate (PEM; CN `spool-test-client`).
    #[must_use]
    pub fn client_cert(&self) -> PathBuf {
        self.path("client.pem")
    }

    /// The client's private key (PEM, PKCS#8).
    #[must_use]
    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }

    /// A second, unrelated CA certificate (PEM): trusting it instead of
    /// [`TestCerts::ca_cert`] must make TLS fail.
    #[must_use]
    pub fn other_ca_cert(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    /// The contents of one of the files above.
    #[must_use]
    pub fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }
}

fn openssl(args: &[&std::ffi::OsStr]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (install it: `apt-get install openssl`)");
    assert!(
        out.status.success(),
        "openssl {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}
