# Overlays
DEVICE_PACKAGE_OVERLAYS += device/google/redfin/redfin/overlay-lineage

# Parts
PRODUCT_PACKAGES += \
    GoogleParts

$(call inherit-product, device/google/redbull/device-lineage.mk)
