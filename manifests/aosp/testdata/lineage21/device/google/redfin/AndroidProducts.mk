#
# Copyright (C) 2020 The LineageOS Project
#
# SPDX-License-Identifier: Apache-2.0
#

PRODUCT_MAKEFILES := \
    $(LOCAL_DIR)/lineage_redfin.mk

COMMON_LUNCH_CHOICES := \
    lineage_redfin-ap2a-userdebug
