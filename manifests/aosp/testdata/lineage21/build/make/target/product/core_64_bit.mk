# Inherit this when the target needs to support 64-bit apps.
PRODUCT_COPY_FILES += system/core/rootdir/init.zygote64_32.rc:system/etc/init/hw/init.zygote64_32.rc

PRODUCT_VENDOR_PROPERTIES += ro.zygote=zygote64_32
