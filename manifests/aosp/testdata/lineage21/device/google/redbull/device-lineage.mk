# Lineage Health
PRODUCT_PACKAGES += \
    vendor.lineage.health-service.default
