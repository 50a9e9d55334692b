PRODUCT_PACKAGES += \
    libqcomvisualizer \
    libqcomvoiceprocessing \
    $(PRODUCT_EXTRA_VENDOR_PACKAGES)
