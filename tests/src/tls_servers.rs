//! Certificates and TLS-only servers for the dependency TLS tests: a CA and
//! a server certificate for 127.0.0.1 made with the `openssl` command, a
//! second CA that signed nothing, and NATS and Redis servers of the test's
//! own that accept only TLS.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::app::unused_port;
use crate::services::workspace_root;

pub struct Certificates {
    pub dir: PathBuf,
    /// The CA that signed the server certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing the servers present.
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificates {
    pub async fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("gad-e2e-tls-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let c = Self {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            dir,
        };
        let p = |name: &str| c.dir.join(name).to_string_lossy().into_owned();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        for (name, cn) in [("ca", "gad-test-ca"), ("other-ca", "gad-other-ca")] {
            openssl(
                &[
                    &["req", "-x509"][..],
                    &ec[..],
                    &[
                        "-keyout",
                        &p(&format!("{name}.key")),
                        "-out",
                        &p(&format!("{name}.pem")),
                        "-days",
                        "2",
                        "-subj",
                        &format!("/CN={cn}"),
                    ],
                ]
                .concat(),
            )
            .await?;
        }
        openssl(
            &[
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    &p("server.key"),
                    "-out",
                    &p("server.csr"),
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        )
        .await?;
        std::fs::write(
            c.dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("server.pem"),
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
        ])
        .await?;
        Ok(c)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running openssl (Debian package openssl)")?;
    if !out.status.success() {
        bail!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A server process of the test's own, killed on drop.
pub struct TlsServer {
    pub port: u16,
    _child: Child,
}

impl TlsServer {
    /// nats-server with JetStream that accepts only TLS clients.
    pub async fn nats(certs: &Certificates, store: &Path) -> anyhow::Result<Self> {
        let local = workspace_root().join(".local/venv/bin/nats-server");
        let binary = if local.is_file() {
            local
        } else {
            PathBuf::from("nats-server")
        };
        let port = unused_port()?;
        let mut cmd = Command::new(binary);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .arg("--tls")
            .arg("--tlscert")
            .arg(&certs.cert)
            .arg("--tlskey")
            .arg(&certs.key);
        Self::spawn(cmd, port).await
    }

    /// redis-server listening only on a TLS port, nothing persisted.
    pub async fn redis(certs: &Certificates) -> anyhow::Result<Self> {
        let port = unused_port()?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&certs.cert)
            .arg("--tls-key-file")
            .arg(&certs.key)
            .arg("--tls-ca-cert-file")
            .arg(&certs.ca)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"]);
        Self::spawn(cmd, port).await
    }

    async fn spawn(mut cmd: Command, port: u16) -> anyhow::Result<Self> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a TLS server")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() >= deadline {
                bail!("TLS server on port {port} not listening within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { port, _child: child })
    }
}
