"""LiteLLM proxy settings llmswitch knows of but does not implement yet (facts about LiteLLM's format).

A key listed here gets "not supported yet, ignored"; a key nowhere gets "unknown key" with a
did-you-mean. Both are warnings: a LiteLLM config must load unchanged, and nothing is dropped silently.
Taken from LiteLLM's proxy docs (docs.litellm.ai/docs/proxy/config_settings and the pages it links).
"""

from __future__ import annotations

TOP_LEVEL = frozenset({
    "callback_settings", "mcp_servers", "mcp_tools", "assistant_settings", "files_settings",
    "finetune_settings", "vector_store_registry", "search_tools", "include", "prompts", "pass_through_endpoints",
    "model_group_settings",
})  # fmt: skip

LITELLM_SETTINGS = frozenset({
    # logging and callbacks
    "service_callback", "service_callbacks", "redact_user_api_key_info", "langfuse_default_tags", "json_logs", "set_verbose",
    "redact_messages_in_exceptions", "log_raw_request_response", "default_redis_batch_cache_expiry",
    # caching
    "enable_caching_on_provider_specific_optional_params",
    # request shaping
    "modify_params", "enable_preview_features", "force_ipv4", "max_parallel_requests",
    "return_response_headers", "enable_json_schema_validation", "disable_add_transform_inline_image_block",
    "use_chat_completions_url_for_anthropic_messages", "disable_hf_tokenizer_download",
    "disable_copilot_system_to_assistant", "mcp_aliases", "guardrails", "default_max_tokens",
    # budgets, keys, users, teams
    "max_budget", "budget_duration", "max_end_user_budget", "max_internal_user_budget",
    "internal_user_budget_duration", "default_team_settings", "default_key_generate_params",
    "upperbound_key_generate_params", "default_internal_user_params", "key_generation_settings",
    "enable_key_alias_format_validation", "disable_end_user_cost_tracking",
    "disable_end_user_cost_tracking_prometheus_only", "public_teams", "telemetry",
})  # fmt: skip

ROUTER_SETTINGS = frozenset({
    "enable_tag_filtering", "tag_filtering_match_any", "default_max_parallel_requests", "default_priority",
    "polling_interval", "default_litellm_params", "debug_level", "client_ttl", "cache_kwargs", "cache_params",
    "cache_responses", "caching_groups", "routing_strategy_args", "alerting_config", "assistants_config",
    "set_verbose", "provider_budget_config", "model_group_retry_policy", "router_general_settings",
    "optional_pre_call_checks", "deployment_affinity_ttl_seconds", "ignore_invalid_deployments", "search_tools",
    "guardrail_list",
})  # fmt: skip

GENERAL_SETTINGS = frozenset({
    "completion_model", "embedding_model", "image_generation_model", "moderation_model",
    "store_prompts_in_spend_logs", "forward_client_headers_to_llm_api", "forward_openai_org_id",
    "disable_spend_logs", "disable_spend_updates", "disable_error_logs", "disable_master_key_return",
    "disable_retry_on_max_parallel_request_limit_error", "disable_reset_budget",
    "disable_adding_master_key_hash_to_db", "disable_responses_id_security", "disable_prisma_schema_update",
    "enable_jwt_auth", "litellm_jwtauth", "enable_oauth2_auth", "enable_oauth2_proxy_auth", "oauth2_config_mappings",
    "custom_auth", "custom_sso", "custom_key_generate", "allow_user_auth", "allow_client_side_credentials",
    "enforce_user_param", "enforced_params", "reject_clientside_metadata_tags", "allowed_routes", "public_routes",
    "admin_only_routes", "allowed_ips", "use_x_forwarded_for", "litellm_key_header_name",
    "key_management_system", "key_management_settings", "use_azure_key_vault", "use_google_kms",
    "maximum_spend_logs_retention_period", "maximum_spend_logs_retention_interval", "user_mcp_management_mode",
    "allow_requests_on_db_unavailable", "max_parallel_requests", "global_max_parallel_requests",
    "infer_model_from_keys", "health_check_details",
    "alerting_threshold",
    "spend_report_frequency", "use_client_credentials_pass_through_routes", "pass_through_endpoints",
    "service_account_settings", "store_model_in_db", "supported_db_objects", "max_response_size_mb",
    "proxy_budget_rescheduler_min_time", "proxy_budget_rescheduler_max_time", "proxy_batch_write_at",
    "proxy_batch_polling_interval", "default_team_disabled", "user_api_key_cache_ttl", "ui_access_mode",
    "litellm_license",
})  # fmt: skip

# A deployment's `litellm_params` beyond the ones llmswitch reads into Deployment fields: LiteLLM passes them
# to the provider call, so llmswitch does too. Knowing them all is what lets a typo (`temprature`) get a
# did-you-mean while a legitimate key stays silent. From LiteLLM's LiteLLM_Params / GenericLiteLLMParams
# model, its config and provider docs, and the OpenAI-compatible completion settings a deployment may set
# as defaults.
DEPLOYMENT_PARAMS = frozenset({
    # completion settings given as the deployment's defaults (the caller's own values win)
    "temperature", "top_p", "top_k", "n", "stop", "max_tokens", "max_completion_tokens", "presence_penalty",
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed", "user", "response_format", "tools",
    "tool_choice", "parallel_tool_calls", "functions", "function_call", "stream", "stream_options",
    "reasoning_effort", "thinking", "verbosity", "modalities", "audio", "prediction", "service_tier", "store",
    "metadata", "web_search_options", "safety_identifier", "prompt_cache_key", "safety_settings", "dimensions",
    "encoding_format", "input_type", "extra_headers", "extra_body", "headers", "num_retries", "mock_response",
    "cache_control_injection_points", "prompt_cache", "merge_reasoning_content_in_choices", "deployment_id",
    "extra_query", "max_parallel_requests", "litellm_metadata", "cached_content",
    # local and self-hosted servers' own sampling and loading settings (Ollama, vLLM), passed through
    "num_ctx", "num_predict", "keep_alive", "repeat_penalty", "mirostat", "min_p", "repetition_penalty",
    # Bedrock's own request fields, passed through under their names
    "guardrailConfig", "performanceConfig", "requestMetadata",
    # dropping what a provider cannot take, TLS and proxies
    "drop_params", "additional_drop_params", "ssl_verify", "ssl_certificate", "outbound_proxy",
    # Azure
    "azure_ad_token", "azure_ad_token_provider", "azure_username", "azure_password", "azure_scope", "tenant_id",
    "client_id", "client_secret", "api_type", "base_model",
    # Vertex AI and Google
    "vertex_project", "vertex_location", "vertex_credentials", "vertex_ai_project", "vertex_ai_location",
    "vertex_ai_credentials",
    # AWS Bedrock and SageMaker
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name", "aws_session_name",
    "aws_profile_name", "aws_role_name", "aws_web_identity_token", "aws_sts_endpoint", "aws_external_id",
    "aws_bedrock_runtime_endpoint", "region_name",
    # IBM watsonx, Databricks and others with their own endpoint fields
    "watsonx_region_name", "project_id", "space_id", "zen_api_key", "api_token",
    # pricing beyond the four per-token/per-second keys read into model_info
    "input_cost_per_pixel", "output_cost_per_pixel", "input_cost_per_character", "output_cost_per_character",
    "cache_creation_input_token_cost", "cache_read_input_token_cost", "input_cost_per_token_batches",
    "output_cost_per_token_batches", "input_cost_per_audio_token", "output_cost_per_audio_token",
    "output_cost_per_reasoning_token", "input_cost_per_query", "output_cost_per_image", "input_cost_per_image",
    # gateway-side: tags, budgets, credentials and routing extras
    "tags", "max_budget", "budget_duration", "max_file_size_mb", "use_in_pass_through", "use_litellm_proxy",
    "configurable_clientside_auth_params", "litellm_trace_id", "model_info", "hf_model_name",
    "auto_router_config_path", "auto_router_config", "auto_router_default_model", "auto_router_embedding_model",
    "supports_system_message", "use_chat_completions_api", "prompt_id", "prompt_variables",
})  # fmt: skip
