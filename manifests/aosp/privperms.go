package aosp

// privilegedPermissions lists platform permissions whose protectionLevel in AOSP's
// frameworks/base/core/res/AndroidManifest.xml carries the "privileged" flag (usually
// "signature|privileged", sometimes with development, appop, installer or role), as of Android 9
// to 14. A privileged app that requests one of them must have it granted or denied in a
// privapp-permissions allowlist, or the device refuses to boot (ro.control_privapp_permissions
// =enforce) or silently drops the grant.
//
// The list is curated from that manifest, not generated: permissions that are "signature" only (an
// app not signed with the platform key never gets them, allowlisted or not), "dangerous" or
// "normal" are not here. Permissions outside the android.permission namespace (an OEM's or Google's)
// are unknown to provkit and are not checked.
var privilegedPermissions = map[string]bool{}

func init() {
	for _, p := range []string{
		"ACCESS_BROADCAST_RADIO", "ACCESS_CACHE_FILESYSTEM", "ACCESS_CHECKIN_PROPERTIES",
		"ACCESS_CONTENT_PROVIDERS_EXTERNALLY", "ACCESS_IMS_CALL_SERVICE", "ACCESS_MTP",
		"ACCESS_NETWORK_CONDITIONS", "ACCESS_NOTIFICATIONS", "ACCESS_VIBRATOR_STATE",
		"ALLOCATE_AGGRESSIVE", "BACKUP", "BATTERY_STATS", "BIND_APPWIDGET", "BLUETOOTH_PRIVILEGED",
		"BROADCAST_NETWORK_PRIVILEGED", "CALL_PRIVILEGED", "CAMERA_SEND_SYSTEM_EVENTS",
		"CAPTURE_AUDIO_HOTWORD", "CAPTURE_AUDIO_OUTPUT", "CAPTURE_MEDIA_OUTPUT",
		"CAPTURE_SECURE_VIDEO_OUTPUT", "CAPTURE_TV_INPUT", "CAPTURE_VIDEO_OUTPUT",
		"CHANGE_APP_IDLE_STATE", "CHANGE_COMPONENT_ENABLED_STATE", "CHANGE_CONFIGURATION",
		"CHANGE_DEVICE_IDLE_TEMP_WHITELIST", "CHANGE_OVERLAY_PACKAGES", "CONNECTIVITY_INTERNAL",
		"CONNECTIVITY_USE_RESTRICTED_NETWORKS", "CONTROL_ALWAYS_ON_VPN", "CONTROL_DISPLAY_BRIGHTNESS",
		"CONTROL_INCALL_EXPERIENCE", "CONTROL_LOCATION_UPDATES", "CONTROL_VPN", "DELETE_CACHE_FILES",
		"DELETE_PACKAGES", "DISPATCH_PROVISIONING_MESSAGE", "DUMP", "ENTER_CAR_MODE_PRIORITIZED",
		"FORCE_STOP_PACKAGES", "GET_ACCOUNTS_PRIVILEGED", "GET_APP_OPS_STATS", "GLOBAL_SEARCH",
		"HANDLE_CAR_MODE_CHANGES", "INSTALL_LOCATION_PROVIDER", "INSTALL_PACKAGES",
		"INSTALL_SELF_UPDATES", "INTENT_FILTER_VERIFICATION_AGENT", "INTERACT_ACROSS_USERS",
		"LAUNCH_TRUST_AGENT_SETTINGS", "LOCAL_MAC_ADDRESS", "LOCATION_HARDWARE", "MANAGE_CA_CERTIFICATES",
		"MANAGE_DEVICE_ADMINS", "MANAGE_LOWPAN_INTERFACES", "MANAGE_SUBSCRIPTION_PLANS", "MANAGE_USB",
		"MANAGE_USERS", "MASTER_CLEAR", "MEDIA_CONTENT_CONTROL", "MODIFY_APPWIDGET_BIND_PERMISSIONS",
		"MODIFY_AUDIO_ROUTING", "MODIFY_CELL_BROADCASTS", "MODIFY_DAY_NIGHT_MODE",
		"MODIFY_DEFAULT_AUDIO_EFFECTS", "MODIFY_NETWORK_ACCOUNTING", "MODIFY_PARENTAL_CONTROLS",
		"MODIFY_PHONE_STATE", "MODIFY_QUIET_MODE", "MOUNT_FORMAT_FILESYSTEMS",
		"MOUNT_UNMOUNT_FILESYSTEMS", "MOVE_PACKAGE", "NETWORK_SIGNAL_STRENGTH_WAKEUP",
		"NFC_HANDOVER_STATUS", "NOTIFY_PENDING_SYSTEM_UPDATE", "OBSERVE_APP_USAGE",
		"OVERRIDE_WIFI_CONFIG", "PACKAGE_USAGE_STATS", "PACKAGE_VERIFICATION_AGENT",
		"PERFORM_CDMA_PROVISIONING", "PROVIDE_TRUST_AGENT", "READ_DREAM_STATE", "READ_LOGS",
		"READ_NETWORK_USAGE_HISTORY", "READ_OEM_UNLOCK_STATE", "READ_PRECISE_PHONE_STATE",
		"READ_PRIVILEGED_PHONE_STATE", "READ_RUNTIME_PROFILES", "READ_SEARCH_INDEXABLES",
		"READ_WIFI_CREDENTIAL", "REAL_GET_TASKS", "REBOOT", "RECEIVE_EMERGENCY_BROADCAST", "RECOVERY",
		"REGISTER_CALL_PROVIDER", "REGISTER_CONNECTION_MANAGER", "REGISTER_SIM_SUBSCRIPTION",
		"RETRIEVE_WINDOW_CONTENT", "SCHEDULE_EXACT_ALARM", "SCORE_NETWORKS",
		"SEND_CATEGORY_CAR_NOTIFICATIONS", "SEND_RESPOND_VIA_MESSAGE", "SEND_SMS_NO_CONFIRMATION",
		"SET_TIME", "SET_TIME_ZONE", "SET_WALLPAPER_COMPONENT", "START_ACTIVITIES_FROM_BACKGROUND",
		"START_TASKS_FROM_RECENTS", "STATUS_BAR", "SUBSTITUTE_NOTIFICATION_APP_NAME",
		"SUBSTITUTE_SHARE_TARGET_APP_NAME_AND_ICON", "TETHER_PRIVILEGED", "TV_INPUT_HARDWARE",
		"UPDATE_APP_OPS_STATS", "UPDATE_DEVICE_STATS", "USE_RESERVED_DISK", "WRITE_APN_SETTINGS",
		"WRITE_DREAM_STATE", "WRITE_EMBEDDED_SUBSCRIPTIONS", "WRITE_MEDIA_STORAGE",
		"WRITE_SECURE_SETTINGS",
		// Added after real trees showed them missing (issue 10): Google's GSF allowlist and
		// development tools. Each is "signature|privileged" (some "|development") in Android 14's
		// frameworks/base/core/res/AndroidManifest.xml.
		"ALLOW_SLIPPERY_TOUCHES", "BIND_CARRIER_SERVICES", "CAPTURE_VOICE_COMMUNICATION_OUTPUT",
		"INVOKE_CARRIER_SETUP", "LOCATION_BYPASS", "NOTIFY_TV_INPUTS", "PROVIDE_RESOLVER_RANKER_SERVICE",
		"READ_CONTENT_RATING_SYSTEMS", "READ_WALLPAPER_INTERNAL", "RECEIVE_DATA_ACTIVITY_CHANGE",
		"SET_ALWAYS_FINISH", "SET_ANIMATION_SCALE", "SET_DEBUG_APP", "SET_PROCESS_LIMIT",
		"SIGNAL_PERSISTENT_PROCESSES", "START_FOREGROUND_SERVICES_FROM_BACKGROUND", "UPDATE_FONTS",
		"USER_ACTIVITY", "UWB_PRIVILEGED", "WRITE_GSERVICES",
	} {
		privilegedPermissions["android.permission."+p] = true
	}
}

// IsPrivilegedPermission reports whether perm is a platform permission with the privileged
// protection flag (see privilegedPermissions for where the list comes from).
func IsPrivilegedPermission(perm string) bool { return privilegedPermissions[perm] }

// UncoveredPrivileged returns the privileged platform permissions (of the built-in list) among
// requested that are neither granted nor denied, sorted: what a privapp-permissions allowlist must
// still decide. The patcher uses the tree's own declarations instead when it has them.
func UncoveredPrivileged(requested, granted, denied []string) []string {
	return builtinCatalog().uncovered(requested, granted, denied)
}
