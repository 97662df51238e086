//! Optional bearer-token auth for the gRPC port. Tokens come from the settings
//! (and so from `PHAROS_*` variables) or a file; they are compared in constant
//! time. A token written `name:secret` names its holder, and that name is put
//! in the request extensions as the [`Actor`] of writes made with it. Health
//! checks stay open so that orchestrators can probe without a token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use subtle::ConstantTimeEq as _;
use tower::{Layer, Service};

use crate::settings::AuthSettings;

/// Who made a call, as told by its bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor(pub String);

/// Why the token set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the tokens file {path}: {source}")]
    TokensFile {
        path: String,
        source: std::io::Error,
    },
    #[error("auth is enabled but no token is configured; add tokens or a non-empty tokens_file")]
    NoTokens,
}

#[derive(Debug)]
struct Token {
    name: String,
    secret: Vec<u8>,
}

/// The accepted tokens.
#[derive(Debug, Clone)]
pub struct TokenSet {
    tokens: Arc<Vec<Token>>,
}

impl TokenSet {
    /// Loads the tokens of the settings, or `None` when auth is off.
    pub fn load(settings: &AuthSettings) -> Result<Option<TokenSet>, AuthError> {
        if !settings.is_enabled() {
            return Ok(None);
        }
        let mut lines: Vec<String> = settings.tokens.clone();
        if let Some(path) = &settings.tokens_file {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::TokensFile {
                path: path.display().to_string(),
                source,
            })?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_string),
            );
        }
        let tokens: Vec<Token> = lines
            .iter()
            .map(|line| match line.split_once(':') {
                Some((name, secret)) if !name.is_empty() && !secret.is_empty() => Token {
                    name: name.to_string(),
                    secret: secret.as_bytes().to_vec(),
                },
                _ => Token {
                    name: "token".to_string(),
                    secret: line.as_bytes().to_vec(),
                },
            })
            .collect();
        if tokens.is_empty() {
            return Err(AuthError::NoTokens);
        }
        Ok(Some(TokenSet {
            tokens: Arc::new(tokens),
        }))
    }

    /// The holder of `presented`, comparing against every token in constant time.
    pub fn verify(&self, presented: &[u8]) -> Option<&str> {
        let mut found = None;
        for token in self.tokens.iter() {
            if bool::from(token.secret.as_slice().ct_eq(presented)) {
                found = Some(token.name.as_str());
            }
        }
        found
    }
}

/// Wraps a service with [`Authenticate`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    tokens: TokenSet,
}

impl AuthLayer {
    pub fn new(tokens: TokenSet) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Authenticate<S> {
    inner: S,
    tokens: TokenSet,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Authenticate<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.inner.call(request));
        }
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let actor = presented.and_then(|token| self.tokens.verify(token.as_bytes()));
        match actor {
            Some(name) => {
                request.extensions_mut().insert(Actor(name.to_string()));
                Box::pin(self.inner.call(request))
            }
            None => {
                let status = crate::error::with_reason(
                    tonic::Code::Unauthenticated,
                    "UNAUTHENTICATED",
                    "missing or unknown bearer token; send `authorization: Bearer <token>`",
                    [],
                );
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_plain_tokens_verify() {
        let settings = AuthSettings {
            tokens: vec!["ops:s3cret".into(), "plain-token".into()],
            tokens_file: None,
        };
        let tokens = TokenSet::load(&settings).expect("load").expect("enabled");
        assert_eq!(tokens.verify(b"s3cret"), Some("ops"));
        assert_eq!(tokens.verify(b"plain-token"), Some("token"));
        assert_eq!(tokens.verify(b"wrong"), None);
        assert_eq!(tokens.verify(b""), None);
    }

    #[test]
    fn auth_off_without_tokens() {
        assert!(
            TokenSet::load(&AuthSettings::default())
                .expect("load")
                .is_none()
        );
    }
}
