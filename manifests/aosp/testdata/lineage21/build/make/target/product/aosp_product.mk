# Includes all AOSP product packages
$(call inherit-product, $(SRC_TARGET_DIR)/product/handheld_product.mk)

PRODUCT_PACKAGES += \
    PhotoTable \
    preinstalled-packages-platform-aosp-product.xml \
    ThemePicker \
