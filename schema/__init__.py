"""The GraphQL surface: scalars, types, inputs, typed errors, extensions and schema assembly.

Fields here are thin: they translate GraphQL input into a use case call in `resolvers` and the
result back into types. No business rule and no database write lives in this package.
"""
