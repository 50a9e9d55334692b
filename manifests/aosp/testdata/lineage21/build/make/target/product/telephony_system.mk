PRODUCT_PACKAGES := \
    ONS \
    CarrierDefaultApp \
    CallLogBackup \
    com.android.cellbroadcast \

PRODUCT_COPY_FILES := \
