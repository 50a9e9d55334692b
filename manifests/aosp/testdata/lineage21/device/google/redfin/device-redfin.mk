#
# Copyright (C) 2019 The Android Open-Source Project
#

PRODUCT_HARDWARE := redfin

include device/google/redbull/device-common.mk

DEVICE_PACKAGE_OVERLAYS += device/google/redfin/redfin/overlay

PRODUCT_SOONG_NAMESPACES += \
    device/google/redfin \
    vendor/google/camera

# Audio XMLs
PRODUCT_COPY_FILES += \
    $(foreach f,$(wildcard device/google/redfin/audio/*.xml),$(f):$(TARGET_COPY_OUT_VENDOR)/etc/$(notdir $(f)))

PRODUCT_COPY_FILES += \
    $(call add-to-product-copy-files-if-exists, vendor/google_devices/redfin/proprietary/thermal-engine.conf:$(TARGET_COPY_OUT_VENDOR)/etc/thermal-engine.conf)

# Permissions for the device's own apps
PRODUCT_COPY_FILES += \
    $(call find-copy-subdir-files,*.xml,device/google/redfin/permissions,$(TARGET_COPY_OUT_PRODUCT)/etc/permissions)

PRODUCT_PACKAGES += \
    $(BOARD_VENDOR_EXTRA_MODULES) \
    NfcNci \
    Tag \
    SecureElement

ifeq ($(call is-board-platform-in-list, lito),true)
PRODUCT_PACKAGES += \
    vendor.qti.hardware.display.allocator-service
endif
