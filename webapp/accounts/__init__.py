"""Users and their access: users and API tokens (`service`), password hashing
(`passwords`), the login wall (`auth`), the sign-in and token pages (`views`),
`flask users` and `flask api-token` (`cli`)."""
