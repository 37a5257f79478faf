"""function-idp-multicloud: the Crossplane composition function of the idp-multicloud platform package."""
