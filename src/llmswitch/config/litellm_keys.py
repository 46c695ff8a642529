"""LiteLLM proxy settings llmswitch knows of but does not implement yet (facts about LiteLLM's format).

A key listed here gets "not supported yet, ignored"; a key nowhere gets "unknown key" with a
did-you-mean. Both are warnings: a LiteLLM config must load unchanged, and nothing is dropped silently.
Taken from LiteLLM's proxy docs (docs.litellm.ai/docs/proxy/config_settings and the pages it links).
"""

from __future__ import annotations

TOP_LEVEL = frozenset({
    "callback_settings", "guardrails", "mcp_servers", "mcp_tools", "assistant_settings", "files_settings",
    "finetune_settings", "vector_store_registry", "search_tools", "include", "prompts", "pass_through_endpoints",
    "model_group_settings",
})  # fmt: skip

LITELLM_SETTINGS = frozenset({
    # logging and callbacks
    "success_callback", "failure_callback", "callbacks", "service_callback", "service_callbacks",
    "turn_off_message_logging", "redact_user_api_key_info", "langfuse_default_tags", "json_logs", "set_verbose",
    "redact_messages_in_exceptions", "log_raw_request_response", "default_redis_batch_cache_expiry",
    # caching
    "cache", "cache_params", "enable_caching_on_provider_specific_optional_params",
    # request shaping
    "drop_params", "modify_params", "enable_preview_features", "force_ipv4", "max_parallel_requests",
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
    "alerting", "alerting_threshold", "alerting_args", "alert_types", "alert_to_webhook_url",
    "spend_report_frequency", "use_client_credentials_pass_through_routes", "pass_through_endpoints",
    "service_account_settings", "store_model_in_db", "supported_db_objects", "max_response_size_mb",
    "proxy_budget_rescheduler_min_time", "proxy_budget_rescheduler_max_time", "proxy_batch_write_at",
    "proxy_batch_polling_interval", "default_team_disabled", "user_api_key_cache_ttl", "ui_access_mode",
    "litellm_license",
})  # fmt: skip
