//! Command-line settings for method authorization on the data plane
//! (standalone and `apigw data-plane`), turned into [`AuthSettings`], and the
//! user-pool settings the control plane shares with it ([`CognitoArgs`]).

use apigw_data_plane::auth::AuthSettings;
use apigw_data_plane::auth::jwt::JwtSettings;
use http::HeaderName;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    #[command(flatten)]
    pub cognito: CognitoArgs,
    /// Header carrying the caller's VPC id (`aws:SourceVpc` in resource policies). Only
    /// set it when the private network edge sets it and strips it from callers.
    #[arg(long, env = "APIGW_SOURCE_VPC_HEADER", value_parser = header_name)]
    pub source_vpc_header: Option<HeaderName>,
    /// Header carrying the caller's VPC endpoint id (`aws:SourceVpce`); same caveat.
    #[arg(long, env = "APIGW_SOURCE_VPCE_HEADER", value_parser = header_name)]
    pub source_vpce_header: Option<HeaderName>,
}

/// Where COGNITO_USER_POOLS tokens are verified: on data-plane nodes (methods)
/// and on the control plane (TestInvokeAuthorizer), with the same flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CognitoArgs {
    /// Issuer base of COGNITO_USER_POOLS tokens: a pool's issuer is `{base}/{poolId}`
    /// [default: https://cognito-idp.{region}.amazonaws.com, the region of the pool's ARN].
    #[arg(long, env = "APIGW_COGNITO_ISSUER_BASE_URL")]
    pub cognito_issuer_base_url: Option<String>,
    /// Where pools' keys are read: `{base}/{poolId}/.well-known/jwks.json`
    /// [default: the issuer base]. Set it for a local user-pool emulator or a private mirror.
    #[arg(long, env = "APIGW_COGNITO_JWKS_BASE_URL")]
    pub cognito_jwks_base_url: Option<String>,
}

impl CognitoArgs {
    pub fn settings(&self) -> JwtSettings {
        JwtSettings {
            issuer_base_url: self.cognito_issuer_base_url.clone(),
            jwks_base_url: self.cognito_jwks_base_url.clone(),
        }
    }
}

fn header_name(raw: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(raw.as_bytes()).map_err(|_| format!("{raw:?} is not a header name"))
}

impl AuthArgs {
    pub fn settings(&self, region: &str) -> AuthSettings {
        AuthSettings {
            region: region.to_owned(),
            source_vpc_header: self.source_vpc_header.clone(),
            source_vpce_header: self.source_vpce_header.clone(),
            jwt: self.cognito.settings(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct ControlPlane {
        #[command(flatten)]
        cognito: CognitoArgs,
    }

    #[derive(Parser)]
    struct Node {
        #[command(flatten)]
        auth: AuthArgs,
    }

    #[test]
    fn control_plane_and_nodes_read_the_same_flags() {
        let args = [
            "apigw",
            "--cognito-issuer-base-url",
            "https://issuer.example",
            "--cognito-jwks-base-url",
            "http://127.0.0.1:5000",
        ];
        let expected = JwtSettings {
            issuer_base_url: Some("https://issuer.example".into()),
            jwks_base_url: Some("http://127.0.0.1:5000".into()),
        };
        assert_eq!(ControlPlane::parse_from(args).cognito.settings(), expected);
        assert_eq!(
            Node::parse_from(args).auth.settings("eu-west-1").jwt,
            expected
        );
    }
}
