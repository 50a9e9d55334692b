#
# Copyright (C) 2019 The Android Open-Source Project
#

$(call inherit-product, $(SRC_TARGET_DIR)/product/core_64_bit.mk)
$(call inherit-product, $(SRC_TARGET_DIR)/product/generic_system.mk)

# Enable mainline checking for excat this product name
ifeq (aosp_redfin,$(TARGET_PRODUCT))
PRODUCT_ENFORCE_ARTIFACT_PATH_REQUIREMENTS := relaxed
endif

PRODUCT_ARTIFACT_PATH_REQUIREMENT_ALLOWED_LIST += \
    root/init.zygote32.rc \
    root/init.zygote64.rc \
    root/init.zygote64_32.rc \

#
# All components inherited here go to product image
#
$(call inherit-product, $(SRC_TARGET_DIR)/product/aosp_product.mk)

$(call inherit-product, device/google/redfin/device-redfin.mk)
$(call inherit-product-if-exists, vendor/google_devices/redfin/proprietary/device-vendor.mk)
$(call inherit-product-if-exists, vendor/google_devices/redbull/proprietary/device-vendor.mk)

PRODUCT_NAME := aosp_redfin
PRODUCT_DEVICE := redfin
PRODUCT_MODEL := AOSP on redfin
PRODUCT_BRAND := Android
PRODUCT_MANUFACTURER := Google
