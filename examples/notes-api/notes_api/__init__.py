"""notes-api: the sample service Slipway deploys in its demo, tests and benchmark."""
