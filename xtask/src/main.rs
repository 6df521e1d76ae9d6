//! `cargo xtask test [nextest arguments]`: the README's test command.
//!
//! The suite runs against real peers (Chromium, an OpenID Provider on Node.js, an SMTP server
//! in Python, OpenLDAP, Phoenix's own clients), so a fresh machine with only Rust, PostgreSQL
//! and Redis lacks most of them. This task installs what is missing, into project-local places
//! where it can (node modules under each test folder, a virtualenv under `target/`), with apt
//! when it runs as root, and otherwise stops naming the exact command to run. Then it runs
//! `cargo nextest run --workspace` with the arguments it was given.
//!
//! `cargo xtask deps` does only the set-up.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// A Debian package and how to tell it is installed.
struct Package {
    name: &'static str,
    present: fn() -> bool,
}

/// What the tests run beside the Rust toolchain, as Debian packages.
const PACKAGES: &[Package] = &[
    Package { name: "chromium", present: || on_path("chromium") },
    Package { name: "chromium-driver", present: || on_path("chromedriver") },
    Package { name: "curl", present: || on_path("curl") },
    Package { name: "nodejs", present: || on_path("node") },
    Package { name: "npm", present: || on_path("npm") },
    Package { name: "python3", present: || on_path("python3") },
    Package { name: "python3-venv", present: || succeeds("python3", &["-c", "import ensurepip"]) },
    Package { name: "slapd", present: || Path::new("/usr/sbin/slapd").exists() },
    Package { name: "ldap-utils", present: || on_path("ldapadd") },
];

/// Test folders whose `package-lock.json` pins the Node.js peers.
const NODE_FOLDERS: &[&str] = &["tests/oidc-provider", "tests/phoenix-client-js"];

/// Python requirements installed into `target/test-venv`.
const PYTHON_REQUIREMENTS: &[&str] =
    &["tests/phoenix-client/requirements.txt", "tests/smtp/requirements.txt"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("test") => setup(&root).and_then(|()| test(&root, args.get(1..).unwrap_or_default())),
        Some("deps") => setup(&root),
        _ => Err("usage: cargo xtask test [nextest arguments] | cargo xtask deps".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Everything the suite needs beyond Rust, PostgreSQL and Redis.
fn setup(root: &Path) -> Result {
    apt_packages()?;
    if !succeeds("cargo", &["nextest", "--version"]) {
        step("installing cargo-nextest");
        run(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))?;
    }
    for folder in NODE_FOLDERS {
        node_modules(&root.join(folder))?;
    }
    virtualenv(root)
}

fn apt_packages() -> Result {
    let missing: Vec<&str> = PACKAGES.iter().filter(|p| !(p.present)()).map(|p| p.name).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() || !on_path("apt-get") {
        return Err(format!(
            "the tests need these Debian packages: {list}\n  install them with: sudo apt-get install -y {list}\n  \
             then run `cargo xtask test` again"
        ));
    }
    step(&format!("installing {list}"));
    run(Command::new("apt-get").args(["update", "-qq"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if missing.contains(&"slapd") {
        // Debian starts a system slapd on port 389; the tests start their own on free ports.
        let _ = Command::new("sh")
            .args(["-c", "systemctl disable --now slapd || service slapd stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    Ok(())
}

/// `npm ci` when the folder's lock file is newer than what is installed.
fn node_modules(folder: &Path) -> Result {
    let lock = folder.join("package-lock.json");
    let installed = folder.join("node_modules/.package-lock.json");
    if modified(&installed).is_some_and(|at| modified(&lock).is_some_and(|lock_at| at >= lock_at)) {
        return Ok(());
    }
    step(&format!("npm ci in {}", folder.display()));
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(folder))
}

/// `target/test-venv` with the pinned Python requirements; reinstalled when they change.
fn virtualenv(root: &Path) -> Result {
    let venv = root.join("target/test-venv");
    let python = venv.join("bin/python");
    let mut wanted = String::new();
    for file in PYTHON_REQUIREMENTS {
        let path = root.join(file);
        wanted += &fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let stamp = venv.join("ashgate-requirements.txt");
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|done| done == wanted) {
        return Ok(());
    }
    if !python.exists() {
        step("creating target/test-venv");
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    step("installing the Python test peers into target/test-venv");
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    for file in PYTHON_REQUIREMENTS {
        pip.arg("-r").arg(root.join(file));
    }
    run(&mut pip)?;
    fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))
}

fn test(root: &Path, args: &[String]) -> Result {
    let python = root.join("target/test-venv/bin/python");
    let mut nextest = Command::new("cargo");
    nextest.current_dir(root).args(["nextest", "run", "--workspace", "--locked"]).args(args);
    if env::var_os("ASHGATE_PYTHON").is_none() {
        nextest.env("ASHGATE_PYTHON", &python);
    }
    run(&mut nextest)
}

fn step(what: &str) {
    eprintln!("xtask: {what}");
}

fn run(command: &mut Command) -> Result {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}
