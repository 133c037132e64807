//! The body against its signature. A signature over a body covers `content-digest`, and the
//! bytes received must hash to exactly the signed value (RFC 9530); a signature without it
//! vouches for no body, so the request must carry none. Either way the handler never sees a
//! byte the edge did not sign: without this, a captured signature would carry any body.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

use super::error::SignatureError;

/// Why a body was refused.
#[derive(Debug)]
pub(super) enum BodyRefusal {
    /// The body does not fit the signature: refused like any bad signature.
    Signature(SignatureError),
    /// The body could not be read, or is over axum's default body limit (the limit every
    /// handler's extractor applies anyway): axum's own answer (400 or 413), as the handler
    /// would have given it.
    Unreadable(Response),
}

impl From<SignatureError> for BodyRefusal {
    fn from(e: SignatureError) -> Self {
        Self::Signature(e)
    }
}

/// Checks `body` against the signed `content_digest` and returns it again for the handler.
/// A signed digest means the body is read whole (bounded as above) and hashed; no digest
/// means not one byte is accepted.
pub(super) async fn bind(content_digest: Option<&str>, body: Body) -> Result<Body, BodyRefusal> {
    let Some(signed) = content_digest else {
        // A limit of 0 fails on the first byte, so an unsigned body is never buffered.
        return match axum::body::to_bytes(body, 0).await {
            Ok(_) => Ok(Body::empty()),
            Err(_) => Err(SignatureError::BodyNotCovered.into()),
        };
    };
    let bytes = Bytes::from_request(Request::new(body), &())
        .await
        .map_err(|rejection| BodyRefusal::Unreadable(rejection.into_response()))?;
    if bytes.is_empty() {
        return Err(SignatureError::DigestWithoutBody.into());
    }
    if fastgate_wire::content_digest(&bytes) != signed {
        return Err(SignatureError::DigestMismatch.into());
    }
    Ok(Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate_wire::test_vector::POST;

    async fn check(digest: Option<&str>, body: Body) -> Result<Bytes, String> {
        match bind(digest, body).await {
            Ok(body) => Ok(axum::body::to_bytes(body, usize::MAX).await.unwrap()),
            Err(BodyRefusal::Signature(e)) => Err(e.to_string()),
            Err(BodyRefusal::Unreadable(r)) => Err(format!("status {}", r.status())),
        }
    }

    #[tokio::test]
    async fn the_signed_body_passes_whole() {
        let body = POST.body.unwrap();
        let got = check(POST.content_digest, Body::from(body)).await.unwrap();
        assert_eq!(&got[..], body);
        // No digest, no body: passes, still empty.
        assert!(check(None, Body::empty()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn another_body_or_an_unsigned_body_is_refused() {
        let err = |e: SignatureError| Err(e.to_string());
        let other = br#"{"id":"item-1","payload":{"a":2}}"#.as_slice();
        assert_eq!(
            check(POST.content_digest, Body::from(other)).await,
            err(SignatureError::DigestMismatch)
        );
        // The body of a signed POST sent under a signature that covers no body.
        assert_eq!(
            check(None, Body::from(POST.body.unwrap())).await,
            err(SignatureError::BodyNotCovered)
        );
        assert_eq!(
            check(POST.content_digest, Body::empty()).await,
            err(SignatureError::DigestWithoutBody)
        );
        // A digest in another form than the contract's (here unpadded) is not the signed one.
        let unpadded = POST.content_digest.unwrap().replace("=:", ":");
        assert_eq!(
            check(Some(&unpadded), Body::from(POST.body.unwrap())).await,
            err(SignatureError::DigestMismatch)
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_gets_axums_413() {
        let big = vec![b'x'; 2 * 1024 * 1024 + 1];
        let digest = fastgate_wire::content_digest(&big);
        assert_eq!(
            check(Some(&digest), Body::from(big)).await,
            Err("status 413 Payload Too Large".to_owned())
        );
    }
}
