# microG: https://github.com/lineageos4microg/android_vendor_partner_gms
PRODUCT_PACKAGES += \
	GmsCore \
	GsfProxy \
	FakeStore \
	MozillaNlpBackend \
	NominatimNlpBackend
