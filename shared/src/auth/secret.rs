//! Where the JWT signing secret comes from.
//!
//! In AWS the secret arrives in `JWT_SECRET` (the template resolves it from
//! Secrets Manager); a function started without one refuses to start, since
//! a per-instance random secret would make every other instance's tokens
//! invalid. On a laptop a random secret is generated once and kept in
//! `DATA_DIR`, so tokens survive a restart of the local gateway.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::config::Config;

const SECRET_FILE: &str = "jwt-secret";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("JWT_SECRET must be set when running in AWS Lambda")]
    MissingInLambda,
    #[error("cannot read or write the local JWT secret in {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
}

/// The secret bytes to sign tokens with.
pub fn resolve_jwt_secret(config: &Config) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    if config.in_lambda {
        return Err(SecretError::MissingInLambda);
    }
    load_or_generate(&config.data_dir)
}

fn load_or_generate(data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    let path = data_dir.join(SECRET_FILE);
    let io = |cause| SecretError::Io { path: path.display().to_string(), cause };
    match fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= 32 => return Ok(existing.trim().as_bytes().to_vec()),
        Ok(_) => tracing::warn!(path = %path.display(), "local JWT secret file is too short; replacing it"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io(err)),
    }
    fs::create_dir_all(data_dir).map_err(io)?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &secret).map_err(io)?;
    tracing::info!(path = %path.display(), "JWT_SECRET is not set: generated a random local secret");
    Ok(secret.into_bytes())
}

/// Writes the file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, String)]) -> Config {
        let pairs = pairs.to_vec();
        Config::from_lookup(move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
    }

    #[test]
    fn a_generated_secret_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let first = resolve_jwt_secret(&config(&[("DATA_DIR", data_dir.clone())])).unwrap();
        let second = resolve_jwt_secret(&config(&[("DATA_DIR", data_dir)])).unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= 32);
    }

    #[test]
    fn lambda_without_a_secret_fails_to_start() {
        let config = config(&[("AWS_LAMBDA_FUNCTION_NAME", "auth-login".into())]);
        assert!(matches!(resolve_jwt_secret(&config), Err(SecretError::MissingInLambda)));
    }

    #[test]
    fn an_explicit_secret_wins() {
        let secret = "s".repeat(40);
        assert_eq!(resolve_jwt_secret(&config(&[("JWT_SECRET", secret.clone())])).unwrap(), secret.as_bytes());
    }
}
