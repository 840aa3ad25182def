--- Samsung Account (AUT_xxxx, LIC_xxxx codes): no paths of its own. Its
-- codes come back from the Knox token endpoints and are looked up here
-- whatever the service answered them.
return {
  name = "samsung_account",
  title = "Samsung Account",
  routes = {},
  token = true,
  errors = {
    auth = {
      ["AUT_1001"] = true, ["AUT_1002"] = true, ["AUT_1006"] = true, ["AUT_1008"] = true,
      ["AUT_1010"] = true, ["AUT_1011"] = true, ["AUT_1015"] = true, ["AUT_1017"] = true,
      ["AUT_1022"] = true, ["AUT_1024"] = true, ["AUT_1045"] = true, ["AUT_1702"] = true,
      ["AUT_1785"] = true, ["AUT_1802"] = true, ["AUT_1806"] = true, ["LIC_4101"] = true,
      ["LIC_4102"] = true, ["LIC_4103"] = true
    },
    retry = { ["LIC_5101"] = true },
  },
}
