package apk

// verifySourceStamp checks the APK's source stamp, if any. A stamp never changes the verdict.
func (v *verifier) verifySourceStamp(minSDK, maxSDK int, r31, r3, r2 *schemeResult, v1 *v1Outcome, ranV1 bool) {
}
