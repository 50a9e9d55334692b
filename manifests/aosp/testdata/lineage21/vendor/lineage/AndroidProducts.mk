PRODUCT_MAKEFILES := \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_arm.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_arm64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_car_arm64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_car_x86_64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_tv_arm.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_tv_arm64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_tv_x86.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_tv_x86_64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_x86.mk \
    $(LOCAL_DIR)/build/target/product/lineage_gsi_x86_64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_car_arm64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_car_x86_64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_phone_arm64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_phone_x86.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_phone_x86_64.mk \
    $(LOCAL_DIR)/build/target/product/lineage_sdk_tv_arm.mk
