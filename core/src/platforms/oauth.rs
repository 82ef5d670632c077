//! The standard OAuth 2.0 pieces (RFC 6749 + PKCE S256, through the `oauth2` crate) that the
//! sandbox, X and LinkedIn connectors share; Meta and TikTok speak their own token dialects.

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{OAuthApp, PlatformError, TokenSet, classify_oauth_error};

/// A client with its authorization and token endpoints set.
pub type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// The app's client; `auth` is how it authenticates at the token endpoint (HTTP Basic or the
/// form body, as the platform reads it).
pub fn client(app: &OAuthApp, authorize: Url, token: Url, auth: AuthType) -> Client {
    BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            app.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_type(auth)
        .set_auth_uri(AuthUrl::from_url(authorize))
        .set_token_uri(TokenUrl::from_url(token))
}

/// Where to send the person: our state, the scopes and the S256 challenge of `pkce_verifier`.
pub fn authorization_url(
    client: &Client,
    redirect_uri: &Url,
    state: &str,
    pkce_verifier: &str,
    scopes: Vec<String>,
) -> Url {
    let state = state.to_owned();
    let (url, _) = client
        .clone()
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
        .authorize_url(move || CsrfToken::new(state))
        .add_scopes(scopes.into_iter().map(Scope::new))
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
            &PkceCodeVerifier::new(pkce_verifier.to_owned()),
        ))
        .url();
    url
}

/// Exchange an authorization code with its PKCE verifier.
pub async fn exchange_code(
    client: &Client,
    http: &reqwest::Client,
    redirect_uri: &Url,
    code: &str,
    pkce_verifier: &str,
) -> Result<TokenSet, PlatformError> {
    let t = client
        .clone()
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
        .request_async(http)
        .await
        .map_err(|e| classify_oauth_error(e).at_code_exchange())?;
    Ok(token_set(&t))
}

/// Use a refresh token.
pub async fn refresh(
    client: &Client,
    http: &reqwest::Client,
    refresh_token: &str,
) -> Result<TokenSet, PlatformError> {
    let t = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
        .request_async(http)
        .await
        .map_err(classify_oauth_error)?;
    Ok(token_set(&t))
}

fn token_set(t: &BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(t.access_token().secret().to_owned()),
        refresh_token: t
            .refresh_token()
            .map(|r| SecretString::from(r.secret().to_owned())),
        expires_in: t.expires_in(),
        scopes: t
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
    }
}
