"""The shared standard regulators negotiate: profiles compared, stored evidence re-assessed under
another profile version, proposals to change a profile, and the other sandboxes whose signed
reports this one recognises."""
