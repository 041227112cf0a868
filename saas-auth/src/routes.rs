//! The `/api/v1/auth/` routes: extract, call one service method, answer JSON.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use saas_core::extract::{Json, Path, Query};
use saas_core::{AppContext, ServiceError, ServiceResult};
use saas_toolkit::{ClientIp, RateLimit};

use crate::extract::{CurrentUser, bearer_token, not_authenticated};
use crate::models::{BiometricCredential, LinkedAccount, Profile, RefreshedTokens, TokenPair, User};
use crate::service::{AuthService, ChallengeFor, IssuedChallenge, ProfileUpdate, RegisterInput, UserUpdate};

/// Every route of the accounts API.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/v1/auth/registration/", post(register))
        .route("/api/v1/auth/login/", post(login))
        .route("/api/v1/auth/deactivate/", post(deactivate))
        .route("/api/v1/auth/logout/", post(logout))
        .route("/api/v1/auth/token/refresh/", post(refresh))
        .route("/api/v1/auth/token/verify/", post(verify_token))
        .route("/api/v1/auth/user/", get(get_user).put(update_user).patch(update_user))
        .route("/api/v1/auth/profile/", get(get_profile).put(update_profile).patch(update_profile))
        .route("/api/v1/auth/password/change/", post(change_password))
        .route("/api/v1/auth/password/reset/", post(reset_password))
        .route("/api/v1/auth/password/reset/confirm/", post(confirm_reset))
        .route("/api/v1/auth/verify-email/", post(verify_email))
        .route("/api/v1/auth/resend-email/", post(resend_email))
        .route("/api/v1/auth/google/", post(google))
        .route("/api/v1/auth/apple/", post(apple))
        .route("/api/v1/auth/linked-accounts/", get(linked_accounts))
        .route("/api/v1/auth/linked-accounts/{id}/", delete(unlink))
        .route("/api/v1/auth/biometric/", delete(disable_biometric))
        .route("/api/v1/auth/biometric/enroll/", post(enroll))
        .route("/api/v1/auth/biometric/challenge/", post(challenge))
        .route("/api/v1/auth/biometric/authenticate/", post(biometric_authenticate))
        .route("/api/v1/auth/biometric/status/", get(biometric_status))
        .route("/api/v1/auth/biometric/credentials/", get(credentials))
        .route("/api/v1/auth/biometric/credentials/{id}/", delete(remove_credential))
}

fn service(ctx: &AppContext) -> ServiceResult<AuthService> {
    AuthService::get(ctx)
}

/// Counts an attempt against the per-address and per-account limits of `name`.
async fn limit(ctx: &AppContext, name: &'static str, ip: &ClientIp, account: Option<&str>) -> ServiceResult<()> {
    let per_minute = ctx.config().auth_rate_limit_per_minute;
    RateLimit::per_minute(name, per_minute).check(ctx, &format!("ip:{}", ip.0)).await?;
    if let Some(account) = account.map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty()) {
        RateLimit::per_minute(name, per_minute).check(ctx, &format!("account:{account}")).await?;
    }
    Ok(())
}

/// `{"detail": …}`, the answer of actions without an object.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Detail {
    /// What happened.
    pub detail: String,
}

fn detail(text: &str) -> Json<Detail> {
    Json(Detail { detail: text.to_owned() })
}

/// `{email, password}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginInput {
    email: String,
    password: String,
}

/// `{refresh}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshInput {
    refresh: String,
}

/// `{token}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenInput {
    token: String,
}

/// `{reason?}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DeactivateInput {
    reason: Option<String>,
}

/// `{old_password, new_password}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChangeInput {
    old_password: String,
    new_password: String,
}

/// `{email}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmailInput {
    email: String,
}

/// `{token, new_password}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ResetConfirmInput {
    token: String,
    new_password: String,
}

/// `{id_token, first_name?, last_name?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SocialInput {
    id_token: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// `{device_id, device_name?, public_key, algorithm}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnrollInput {
    device_id: String,
    device_name: Option<String>,
    /// Base64 DER SubjectPublicKeyInfo.
    public_key: String,
    /// `ES256` or `EdDSA`.
    algorithm: String,
}

/// `{credential_id}` or `{email}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChallengeInput {
    credential_id: Option<Uuid>,
    email: Option<String>,
}

/// `{credential_id or email, challenge, signature}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BiometricInput {
    credential_id: Option<Uuid>,
    email: Option<String>,
    /// The challenge as issued (base64).
    challenge: String,
    /// Base64 signature over the decoded challenge bytes.
    signature: String,
}

/// `?email=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    email: Option<String>,
}

/// `{biometric_enabled}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BiometricStatus {
    biometric_enabled: bool,
}

fn challenge_target(credential_id: Option<Uuid>, email: Option<String>) -> ServiceResult<ChallengeFor> {
    match (credential_id, email) {
        (Some(id), _) => Ok(ChallengeFor::Credential(id)),
        (None, Some(email)) => Ok(ChallengeFor::Email(email)),
        (None, None) => Err(ServiceError::invalid_field("credential_id", "Send credential_id or email.")),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/registration/", tag = "auth", request_body = RegisterInput,
    responses((status = 201, body = TokenPair), (status = 400, description = "auth.email_taken or validation.failed"), (status = 429, description = "rate_limited")))]
async fn register(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<RegisterInput>,
) -> ServiceResult<(StatusCode, Json<TokenPair>)> {
    limit(&ctx, "auth.registration", &ip, Some(&input.email)).await?;
    Ok((StatusCode::CREATED, Json(service(&ctx)?.register(input).await?)))
}

#[utoipa::path(post, path = "/api/v1/auth/login/", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = TokenPair), (status = 401, description = "auth.invalid_credentials"), (status = 403, description = "auth.inactive"), (status = 429, description = "rate_limited")))]
async fn login(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<LoginInput>,
) -> ServiceResult<Json<TokenPair>> {
    limit(&ctx, "auth.login", &ip, Some(&input.email)).await?;
    Ok(Json(service(&ctx)?.login(&input.email, &input.password).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/deactivate/", tag = "auth", request_body = DeactivateInput,
    responses((status = 200, body = User)), security(("bearerAuth" = [])))]
async fn deactivate(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    body: Option<Json<DeactivateInput>>,
) -> ServiceResult<Json<User>> {
    let reason = body.and_then(|Json(b)| b.reason);
    Ok(Json(service(&ctx)?.deactivate(user.id, reason.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout/", tag = "auth", request_body = RefreshInput,
    responses((status = 200, body = Detail)), security(("bearerAuth" = [])))]
async fn logout(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<RefreshInput>,
) -> ServiceResult<Json<Detail>> {
    service(&ctx)?.logout(user.id, &input.refresh).await?;
    Ok(detail("Successfully logged out."))
}

#[utoipa::path(post, path = "/api/v1/auth/token/refresh/", tag = "auth", request_body = RefreshInput,
    responses((status = 200, body = RefreshedTokens), (status = 401, description = "auth.token_invalid or auth.token_reused")))]
async fn refresh(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<RefreshInput>,
) -> ServiceResult<Json<RefreshedTokens>> {
    let service = service(&ctx)?;
    let account = service.keys().decode(&input.refresh).ok().map(|claims| claims.user_id.to_string());
    limit(&ctx, "auth.refresh", &ip, account.as_deref()).await?;
    Ok(Json(service.refresh(&input.refresh).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/token/verify/", tag = "auth", request_body = TokenInput,
    responses((status = 200, description = "{}"), (status = 401, description = "auth.token_invalid")))]
async fn verify_token(State(ctx): State<AppContext>, Json(input): Json<TokenInput>) -> ServiceResult<Json<Value>> {
    service(&ctx)?.verify_token(&input.token).await?;
    Ok(Json(json!({})))
}

#[utoipa::path(get, path = "/api/v1/auth/user/", tag = "auth", responses((status = 200, body = User)), security(("bearerAuth" = [])))]
async fn get_user(State(ctx): State<AppContext>, headers: HeaderMap) -> ServiceResult<Json<User>> {
    let token = bearer_token(&headers).ok_or_else(not_authenticated)?;
    Ok(Json(service(&ctx)?.signed_in_user(token).await?))
}

#[utoipa::path(method(put, patch), path = "/api/v1/auth/user/", tag = "auth", request_body = UserUpdate,
    responses((status = 200, body = User), (status = 400, description = "auth.email_taken")), security(("bearerAuth" = [])))]
async fn update_user(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<UserUpdate>,
) -> ServiceResult<Json<User>> {
    Ok(Json(service(&ctx)?.update_user(user.id, input).await?))
}

#[utoipa::path(get, path = "/api/v1/auth/profile/", tag = "auth", responses((status = 200, body = Profile)), security(("bearerAuth" = [])))]
async fn get_profile(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Profile>> {
    Ok(Json(service(&ctx)?.profile(user.id).await?))
}

#[utoipa::path(method(put, patch), path = "/api/v1/auth/profile/", tag = "auth", request_body = ProfileUpdate,
    responses((status = 200, body = Profile), (status = 400, description = "auth.username_taken or validation.failed")), security(("bearerAuth" = [])))]
async fn update_profile(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<ProfileUpdate>,
) -> ServiceResult<Json<Profile>> {
    Ok(Json(service(&ctx)?.update_profile(user.id, input).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/password/change/", tag = "auth", request_body = PasswordChangeInput,
    responses((status = 200, body = Detail), (status = 400, description = "auth.invalid_password")), security(("bearerAuth" = [])))]
async fn change_password(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<PasswordChangeInput>,
) -> ServiceResult<Json<Detail>> {
    service(&ctx)?.change_password(user.id, &user.session, &input.old_password, &input.new_password).await?;
    Ok(detail("New password has been saved."))
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset/", tag = "auth", request_body = EmailInput, responses((status = 200, body = Detail)))]
async fn reset_password(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<EmailInput>,
) -> ServiceResult<Json<Detail>> {
    limit(&ctx, "auth.password_reset", &ip, Some(&input.email)).await?;
    service(&ctx)?.request_password_reset(&input.email).await?;
    Ok(detail("Password reset e-mail has been sent."))
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset/confirm/", tag = "auth", request_body = ResetConfirmInput,
    responses((status = 200, body = Detail), (status = 400, description = "auth.invalid_token")))]
async fn confirm_reset(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<ResetConfirmInput>,
) -> ServiceResult<Json<Detail>> {
    limit(&ctx, "auth.password_reset", &ip, None).await?;
    service(&ctx)?.confirm_password_reset(&input.token, &input.new_password).await?;
    Ok(detail("Password has been reset with the new password."))
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email/", tag = "auth", request_body = TokenInput,
    responses((status = 200, body = Detail), (status = 400, description = "auth.invalid_token")))]
async fn verify_email(State(ctx): State<AppContext>, Json(input): Json<TokenInput>) -> ServiceResult<Json<Detail>> {
    service(&ctx)?.verify_email(&input.token).await?;
    Ok(detail("ok"))
}

#[utoipa::path(post, path = "/api/v1/auth/resend-email/", tag = "auth",
    responses((status = 200, body = Detail), (status = 400, description = "auth.already_verified")), security(("bearerAuth" = [])))]
async fn resend_email(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Detail>> {
    service(&ctx)?.resend_verification(user.id).await?;
    Ok(detail("ok"))
}

async fn social(ctx: &AppContext, provider: &str, input: SocialInput) -> ServiceResult<(StatusCode, Json<TokenPair>)> {
    let (pair, created) = service(ctx)?
        .social_login(provider, &input.id_token, input.first_name.as_deref(), input.last_name.as_deref())
        .await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(pair)))
}

#[utoipa::path(post, path = "/api/v1/auth/google/", tag = "auth", request_body = SocialInput,
    responses((status = 200, body = TokenPair), (status = 201, body = TokenPair), (status = 401, description = "auth.invalid_social_token")))]
async fn google(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<SocialInput>,
) -> ServiceResult<(StatusCode, Json<TokenPair>)> {
    limit(&ctx, "auth.social", &ip, None).await?;
    social(&ctx, "google", input).await
}

#[utoipa::path(post, path = "/api/v1/auth/apple/", tag = "auth", request_body = SocialInput,
    responses((status = 200, body = TokenPair), (status = 201, body = TokenPair), (status = 401, description = "auth.invalid_social_token")))]
async fn apple(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<SocialInput>,
) -> ServiceResult<(StatusCode, Json<TokenPair>)> {
    limit(&ctx, "auth.social", &ip, None).await?;
    social(&ctx, "apple", input).await
}

#[utoipa::path(get, path = "/api/v1/auth/linked-accounts/", tag = "auth",
    responses((status = 200, body = Vec<LinkedAccount>)), security(("bearerAuth" = [])))]
async fn linked_accounts(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Vec<LinkedAccount>>> {
    Ok(Json(service(&ctx)?.linked_accounts(user.id).await?))
}

#[utoipa::path(delete, path = "/api/v1/auth/linked-accounts/{id}/", tag = "auth", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 400, description = "auth.last_login_method"), (status = 404)), security(("bearerAuth" = [])))]
async fn unlink(State(ctx): State<AppContext>, user: CurrentUser, Path(id): Path<Uuid>) -> ServiceResult<StatusCode> {
    service(&ctx)?.unlink_account(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/biometric/enroll/", tag = "auth", request_body = EnrollInput,
    responses((status = 201, body = BiometricCredential), (status = 400, description = "validation.failed")), security(("bearerAuth" = [])))]
async fn enroll(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<EnrollInput>,
) -> ServiceResult<(StatusCode, Json<BiometricCredential>)> {
    let credential = service(&ctx)?
        .enroll_device(user.id, &input.device_id, input.device_name.as_deref(), &input.public_key, &input.algorithm)
        .await?;
    Ok((StatusCode::CREATED, Json(credential)))
}

#[utoipa::path(post, path = "/api/v1/auth/biometric/challenge/", tag = "auth", request_body = ChallengeInput,
    responses((status = 200, body = IssuedChallenge), (status = 404, description = "auth.biometric_not_enabled")))]
async fn challenge(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<ChallengeInput>,
) -> ServiceResult<Json<IssuedChallenge>> {
    limit(&ctx, "auth.biometric_challenge", &ip, None).await?;
    let target = challenge_target(input.credential_id, input.email)?;
    Ok(Json(service(&ctx)?.biometric_challenge(target).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/biometric/authenticate/", tag = "auth", request_body = BiometricInput,
    responses((status = 200, body = TokenPair), (status = 401, description = "auth.biometric_failed"), (status = 429, description = "rate_limited")))]
async fn biometric_authenticate(
    State(ctx): State<AppContext>,
    ip: ClientIp,
    Json(input): Json<BiometricInput>,
) -> ServiceResult<Json<TokenPair>> {
    // The account is the one the credential names when both are sent (the one signed in to).
    let account = input.credential_id.map(|id| id.to_string()).or_else(|| input.email.clone());
    limit(&ctx, "auth.biometric", &ip, account.as_deref()).await?;
    let target = challenge_target(input.credential_id, input.email)?;
    Ok(Json(service(&ctx)?.biometric_authenticate(target, &input.challenge, &input.signature).await?))
}

#[utoipa::path(get, path = "/api/v1/auth/biometric/status/", tag = "auth", params(StatusQuery),
    responses((status = 200, body = BiometricStatus), (status = 400, description = "validation.failed")))]
async fn biometric_status(
    State(ctx): State<AppContext>,
    Query(query): Query<StatusQuery>,
) -> ServiceResult<Json<BiometricStatus>> {
    let email = query
        .email
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| ServiceError::invalid_field("email", "This field is required."))?;
    Ok(Json(BiometricStatus { biometric_enabled: service(&ctx)?.biometric_enabled(&email).await? }))
}

#[utoipa::path(delete, path = "/api/v1/auth/biometric/", tag = "auth", responses((status = 200, description = "{\"disabled\": true}")), security(("bearerAuth" = [])))]
async fn disable_biometric(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Value>> {
    service(&ctx)?.disable_biometric(user.id).await?;
    Ok(Json(json!({"disabled": true})))
}

#[utoipa::path(get, path = "/api/v1/auth/biometric/credentials/", tag = "auth",
    responses((status = 200, body = Vec<BiometricCredential>)), security(("bearerAuth" = [])))]
async fn credentials(
    State(ctx): State<AppContext>,
    user: CurrentUser,
) -> ServiceResult<Json<Vec<BiometricCredential>>> {
    Ok(Json(service(&ctx)?.biometric_credentials(user.id).await?))
}

#[utoipa::path(delete, path = "/api/v1/auth/biometric/credentials/{id}/", tag = "auth", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearerAuth" = [])))]
async fn remove_credential(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<StatusCode> {
    service(&ctx)?.remove_biometric_credential(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        register, login, deactivate, logout, refresh, verify_token, get_user, update_user, get_profile, update_profile,
        change_password, reset_password, confirm_reset, verify_email, resend_email, google, apple, linked_accounts,
        unlink, enroll, challenge, biometric_authenticate, biometric_status, disable_biometric, credentials,
        remove_credential
    ),
    tags((name = "auth", description = "Accounts, sessions, social and biometric sign-in"))
)]
pub struct AuthApi;
