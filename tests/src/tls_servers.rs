//! Certificates and TLS-only servers for the dependency TLS tests: a CA and
//! a server certificate for 127.0.0.1 made with the `openssl` command, a
//! second CA that signed nothing, and NATS, Redis and PostgreSQL servers of
//! the test's own that accept only TLS.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
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

/// The database user [`TlsServer::postgres`] trusts without a password
/// (database `postgres`).
pub const POSTGRES_USER: &str = "gad_tls";

/// A server process of the test's own, killed on drop.
pub struct TlsServer {
    pub port: u16,
    /// Declared before `_child`, so dropped first: PostgreSQL is shut down
    /// (and its directory removed) before the process handle is killed.
    _cluster: Option<PostgresCluster>,
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
        Ok(Self {
            port,
            _cluster: None,
            _child: child,
        })
    }

    /// A PostgreSQL cluster of its own (`initdb` in a directory under
    /// `certs.dir`) that serves TCP on 127.0.0.1 only over TLS, with the
    /// certificate `certs.ca` signed, and trusts [`POSTGRES_USER`]. The
    /// binaries are those of `pg_config --bindir`, else the newest
    /// `/usr/lib/postgresql/*/bin` (where `deploy/services.sh up` installs
    /// Debian's `postgresql`). As root, `initdb` and `postgres` (which refuse
    /// root) run as the `postgres` OS user.
    pub async fn postgres(certs: &Certificates) -> anyhow::Result<Self> {
        let bindir = postgres_bindir().await?;
        // We made certs.dir, so its owner is who we are.
        let as_postgres = std::fs::metadata(&certs.dir)?.uid() == 0;
        let dir = certs.dir.join("postgres");
        std::fs::create_dir(&dir)?;
        // From here on, an early return stops and removes what was made.
        let cluster = PostgresCluster {
            bindir,
            data: dir.join("data"),
            dir,
            as_postgres,
        };
        let dir = &cluster.dir;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::copy(&certs.cert, &cert)?;
        std::fs::copy(&certs.key, &key)?;
        // PostgreSQL refuses a key that others may read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
        if as_postgres {
            // The postgres user must get through certs.dir to its own directory.
            std::fs::set_permissions(&certs.dir, std::fs::Permissions::from_mode(0o711))?;
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres:").arg(dir);
            run(chown)
                .await
                .context("handing the cluster directory to the postgres OS user (Debian package postgresql)")?;
        }

        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&cluster.data).args([
            "-U",
            POSTGRES_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb).await?;
        // TCP only with TLS; the Unix socket (for the readiness check) without.
        std::fs::write(
            cluster.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )?;

        let port = unused_port()?;
        let log = dir.join("postgres.log");
        let mut postgres = cluster.command("postgres");
        postgres
            .arg("-D")
            .arg(&cluster.data)
            .args(["-p", &port.to_string()])
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        let mut child = postgres.spawn().context("starting postgres")?;

        let ready = PgConnectOptions::new_without_pgpass()
            .socket(dir)
            .port(port)
            .username(POSTGRES_USER)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "postgres exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            match PgConnection::connect_with(&ready).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    break;
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    bail!(
                        "postgres on port {port} not ready within 15 s ({e}): {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        Ok(Self {
            port,
            _cluster: Some(cluster),
            _child: child,
        })
    }
}

/// The directory and binaries of [`TlsServer::postgres`]'s cluster: on drop,
/// the server (if running) is stopped and the directory removed.
struct PostgresCluster {
    bindir: PathBuf,
    dir: PathBuf,
    data: PathBuf,
    as_postgres: bool,
}

impl PostgresCluster {
    /// `program` from the server's bindir, as the postgres OS user if we are root.
    fn command(&self, program: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(self.bindir.join(program));
            cmd
        } else {
            std::process::Command::new(self.bindir.join(program))
        };
        // Our working directory may be closed to the postgres user.
        cmd.current_dir("/");
        Command::from(cmd)
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            // A clean, fast shutdown (killing the postmaster would leave its
            // shared memory segment behind). Blocks briefly; fsync is off.
            let mut stop = self.command("pg_ctl").into_std();
            stop.arg("stop")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "-t", "10", "-s"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = stop.status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The bindir of the PostgreSQL server: `pg_config --bindir` if it holds the
/// server programs (Debian's pg_config may belong to a newer client-only
/// libpq-dev), else the newest `/usr/lib/postgresql/<major>/bin`.
async fn postgres_bindir() -> anyhow::Result<PathBuf> {
    let has_server = |dir: &Path| ["initdb", "postgres", "pg_ctl"].iter().all(|p| dir.join(p).is_file());
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .await
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server programs (initdb, postgres, pg_ctl) under `pg_config --bindir` or /usr/lib/postgresql/*/bin (Debian package postgresql; `deploy/services.sh up` installs it)"
        ),
    }
}

async fn run(mut cmd: Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {:?}", cmd.as_std().get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed ({}): {}{}",
            cmd.as_std().get_program(),
            cmd.as_std().get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
