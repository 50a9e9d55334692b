# Inherit common Lineage stuff
$(call inherit-product, vendor/lineage/config/common.mk)

# AOSP packages
PRODUCT_PACKAGES += \
    Email \
    ExactCalculator \
    Exchange2

# Lineage packages
PRODUCT_PACKAGES += \
    Aperture \
    Etar \
    Glimpse \
    Jelly \
    Profiles \
    Seedvault \
    Twelve

ifneq ($(PRODUCT_NO_CAMERA),true)
PRODUCT_PACKAGES += \
    Aperture
endif
